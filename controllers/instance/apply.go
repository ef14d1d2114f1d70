package instance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// toUnstructured turns a rendered object into the apply configuration we send: GVK set,
// owned by the instance, server-populated fields dropped.
func (r *Reconciler) toUnstructured(inst *saasv1alpha1.MarketplaceInstance, obj client.Object) (*unstructured.Unstructured, error) {
	gvk, err := apiutil.GVKForObject(obj, r.Scheme)
	if err != nil {
		return nil, fmt.Errorf("finding the kind of %T: %w", obj, err)
	}
	if err := render.SetOwner(obj, inst); err != nil {
		return nil, fmt.Errorf("setting owner of %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("converting %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		u = &unstructured.Unstructured{Object: m}
	}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

// apply server-side applies obj as a child of s.inst and records it in the inventory, unless the
// inventory says this very rendering was applied, the live object (nil when it does not exist)
// is still the instance's, and its isolation has not drifted.
func (r *Reconciler) apply(ctx context.Context, s *scope, obj client.Object, live *unstructured.Unstructured) error {
	u, err := r.toUnstructured(s.inst, obj)
	if err != nil {
		return err
	}
	hash, err := render.AppliedHash(u)
	if err != nil {
		return err
	}
	ref := refOf(u)
	if e := s.entry(ref); e != nil && e.AppliedHash == hash && live != nil && render.OwnedBy(live, s.inst) && !drifted(live, u, e.Generation) {
		return nil
	}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(render.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	// u now holds the API server's answer.
	s.recordApplied(ref, hash, u.GetGeneration())
	s.answered(ref, u)
	return nil
}

// drifted reports whether the live object changed since the apply the inventory records: its
// generation moved past the one that apply produced (a spec edit by hand, or an apply of ours
// whose record was lost when the manager died before its status write: a freeze's scale-down,
// say, which an unfreeze must then undo), or the Pod Security labels of the tenant namespace
// differ (labels move no generation; the cache keeps them). A hand edit is undone as soon as its
// watch event arrives, and at the latest at the next resync.
func drifted(live, desired *unstructured.Unstructured, appliedGeneration int64) bool {
	if live.GetGeneration() > appliedGeneration {
		return true
	}
	if desired.GetKind() == "Namespace" {
		labels := live.GetLabels()
		for k, v := range desired.GetLabels() {
			if strings.HasPrefix(k, render.PodSecurityLabelPrefix) && labels[k] != v {
				return true
			}
		}
	}
	return false
}

// live reads the current object, from the label-scoped cache for the kinds it holds (trimmed,
// see managercache.TrimChild) and from the API server otherwise, or when the cache is behind the
// operator's last apply of it: its copy is older than the generation the inventory records, or
// it has none of an object the inventory says was applied (the API server gives kinds such as
// ResourceQuota and LimitRange no generation, so for them absence is the only sign; taking it
// for a deleted object would re-apply an unchanged one). It returns nil when the object does
// not exist.
func (r *Reconciler) live(ctx context.Context, s *scope, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	if managercache.Holds(gvk) {
		typed, err := r.Scheme.New(gvk)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", gvk.Kind, err)
		}
		obj := typed.(client.Object)
		err = r.Client.Get(ctx, key, obj)
		ref := refFor(gvk, name)
		switch {
		case apierrors.IsNotFound(err) && s.entry(ref) == nil:
			return nil, nil
		case err == nil && obj.GetGeneration() >= s.generationOf(ref):
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				return nil, fmt.Errorf("converting %s %s: %w", gvk.Kind, name, err)
			}
			return &unstructured.Unstructured{Object: m}, nil
		case err != nil && !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("getting %s %s: %w", gvk.Kind, name, err)
		}
		// The cache has not caught up with our last apply of it yet.
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := r.APIReader.Get(ctx, key, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("getting %s %s: %w", gvk.Kind, name, err)
	}
	return u, nil
}

// errNotOurs marks an object in our way that another owner manages.
var errNotOurs = errors.New("exists and is not managed by this instance")
