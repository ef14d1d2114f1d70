// Package v1alpha1 holds the saas.marketplace.dev/v1alpha1 API: MarketplacePlan, which says what
// a tenant on a KooGallery SKU gets, and MarketplaceInstance, one buyer's purchase and the
// tenant it runs. Both are cluster-scoped because an instance owns a Namespace.
//
// +kubebuilder:object:generate=true
// +groupName=saas.marketplace.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "saas.marketplace.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
