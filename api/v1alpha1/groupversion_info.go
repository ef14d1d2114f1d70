// Package v1alpha1 holds the saas.marketplace.dev/v1alpha1 API: MarketplacePlan, which says what
// a tenant on a KooGallery SKU gets, and MarketplaceInstance, one buyer's purchase and the
// tenant it runs. Both are cluster-scoped because an instance owns a Namespace.
//
// +kubebuilder:object:generate=true
// +groupName=saas.marketplace.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "saas.marketplace.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the kinds with apimachinery alone, so importing the API pulls in no
// controller-runtime.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&MarketplacePlan{}, &MarketplacePlanList{},
		&MarketplaceInstance{}, &MarketplaceInstanceList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
