// Package managercache is the manager's cache: which objects it holds and what it keeps of
// each. The manager builds its cache from Options; the reconcilers and the endpoint read
// through it and must not expect more of an object than the transforms here keep.
package managercache

import (
	"maps"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
)

// ChildKinds are the kinds of a tenant's objects that the cache holds and the instance
// reconciler watches; the cache holds only the objects that carry the instance label (never
// every Secret in the cluster). Other kinds a plan renders are read from the API server.
func ChildKinds() []client.Object {
	return []client.Object{
		&corev1.Namespace{}, &corev1.ResourceQuota{}, &corev1.LimitRange{}, &corev1.Secret{}, &corev1.Service{},
		&appsv1.Deployment{}, &appsv1.StatefulSet{}, &batchv1.Job{}, &batchv1.CronJob{},
		&networkingv1.NetworkPolicy{}, &networkingv1.Ingress{},
	}
}

// held are the kinds of ChildKinds.
var held = func() map[schema.GroupVersionKind]bool {
	s := scheme.New()
	kinds := map[schema.GroupVersionKind]bool{}
	for _, o := range ChildKinds() {
		gvk, err := apiutil.GVKForObject(o, s)
		if err != nil {
			panic(err) // built-in kinds the scheme registers: cannot fail
		}
		kinds[gvk] = true
	}
	return kinds
}()

// Holds reports whether the cache holds the tenant objects of a kind (one of ChildKinds).
func Holds(gvk schema.GroupVersionKind) bool { return held[gvk] }

// Options scopes the cache of child kinds to objects labelled with an instance, and keeps of
// each object only what the operator reads (TrimChild, TrimInstance): the cache is most of the
// manager's memory at thousands of instances. For the same reason the child kinds' informers
// have no namespace index: it held a set per tenant namespace and kind (over 300 bytes each,
// for one or two objects), and nothing lists children by namespace from the cache. A List of
// a child kind in a namespace fails (index "namespace" does not exist): read those from the API
// server.
func Options() cache.Options {
	req, err := labels.NewRequirement(saasv1alpha1.LabelInstance, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant label key: cannot fail
	}
	sel := labels.NewSelector().Add(*req)
	by := map[client.Object]cache.ByObject{&saasv1alpha1.MarketplaceInstance{}: {Transform: TrimInstance}}
	children := map[reflect.Type]bool{}
	for _, o := range ChildKinds() {
		by[o] = cache.ByObject{Label: sel, Transform: TrimChild}
		children[reflect.TypeOf(o)] = true
	}
	return cache.Options{ByObject: by, DefaultTransform: cache.TransformStripManagedFields(),
		NewInformer: func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, idx toolscache.Indexers) toolscache.SharedIndexInformer {
			if children[reflect.TypeOf(obj)] {
				idx = maps.Clone(idx)
				delete(idx, toolscache.NamespaceIndex)
			}
			return toolscache.NewSharedIndexInformer(lw, obj, resync, idx)
		}}
}
