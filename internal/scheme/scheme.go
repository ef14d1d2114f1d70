// Package scheme builds the runtime.Scheme of the operator: the built-in Kubernetes kinds plus
// the saas.marketplace.dev API.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// New returns a scheme with the built-in kinds and this project's API.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	// Both only register static type tables: an error here is a programming error.
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := saasv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
