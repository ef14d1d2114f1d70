package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// addFinalizer holds the instance until its last period is pushed.
func (r *Reconciler) addFinalizer(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) error {
	if controllerutil.ContainsFinalizer(inst, saasv1alpha1.FinalizerUsage) || !inst.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := patchFinalizers(ctx, r.Client, inst, append(slices.Clone(inst.Finalizers), saasv1alpha1.FinalizerUsage)); err != nil {
		return fmt.Errorf("adding the usage finalizer: %w", err)
	}
	return nil
}

// release lets go of an instance that needs no further push: the finalizer comes off its usage
// ConfigMap once it is released (the namespace's deletion waits for it, so the application's last
// report is read), then off the instance.
func (r *Reconciler) release(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) error {
	if !inst.DeletionTimestamp.IsZero() && inst.Status.Namespace != "" {
		cm := &corev1.ConfigMap{}
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: inst.Status.Namespace, Name: saasv1alpha1.UsageConfigMap}, cm)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("getting the usage ConfigMap: %w", err)
		case render.OwnedBy(cm, inst) && controllerutil.ContainsFinalizer(cm, saasv1alpha1.FinalizerUsage):
			if err := patchFinalizers(ctx, r.Client, cm, without(cm.Finalizers)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("removing the usage ConfigMap's finalizer: %w", err)
			}
		}
	}
	if !controllerutil.ContainsFinalizer(inst, saasv1alpha1.FinalizerUsage) {
		return nil
	}
	if err := patchFinalizers(ctx, r.Client, inst, without(inst.Finalizers)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing the usage finalizer: %w", err))
	}
	return nil
}

func without(finalizers []string) []string {
	return slices.DeleteFunc(slices.Clone(finalizers), func(f string) bool { return f == saasv1alpha1.FinalizerUsage })
}

// patchFinalizers replaces obj's finalizers if they are still what obj holds: the instance
// controller writes the same list, and a lock on the list alone does not fail on the endpoint's
// writes to the rest of the object.
func patchFinalizers(ctx context.Context, c client.Client, obj client.Object, want []string) error {
	var current any // absent: a JSON Patch test against null passes only while none is set
	if f := obj.GetFinalizers(); len(f) > 0 {
		current = f
	}
	ops, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/finalizers", "value": current},
		{"op": "add", "path": "/metadata/finalizers", "value": want},
	})
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, ops))
}
