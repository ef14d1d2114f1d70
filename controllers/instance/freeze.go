package instance

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

const defaultFreezeGrace = time.Hour

// maxFreezePeriod is the longest time KooGallery keeps an expired instance frozen before it
// releases it (spec §1.4: up to 15 days, by customer level).
const maxFreezePeriod = 15 * 24 * time.Hour

// effectiveExpiry is when the buyer's paid period ends: spec.expireTime once a refreshInstance
// set it (calls are ordered by their signed timestamps, and a renewal or a cancelled renewal
// period is newer than the order it renews), else the expireTime Query Order gave for the
// effective order, so a purchase or a trial that never gets a refresh still expires.
func effectiveExpiry(inst *saasv1alpha1.MarketplaceInstance) *metav1.Time {
	if inst.Spec.ExpireTime != nil {
		return inst.Spec.ExpireTime.DeepCopy()
	}
	if o := inst.Status.Order; o != nil && o.ExpireTime != nil {
		return o.ExpireTime.DeepCopy()
	}
	return nil
}

// frozen reports whether the tenant must be frozen now: by its spec, or because its paid period
// (effectiveExpiry) ended more than the grace period ago (a lost freeze callback must not let a
// buyer keep using it). It also sets the Frozen condition, status.expireTime and the wake-up at
// expiry.
func (r *Reconciler) frozen(s *scope) bool {
	grace := r.Options.FreezeGrace
	if grace == 0 {
		grace = defaultFreezeGrace
	}
	expiry := effectiveExpiry(s.inst)
	s.inst.Status.ExpireTime = expiry
	switch {
	case s.inst.Spec.State == saasv1alpha1.StateFrozen:
		s.set(saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonFrozenByOrder,
			"spec.state is Frozen: workloads scaled to zero, ingress blocked, data kept")
		return true
	case expiry != nil && !s.now.Before(expiry.Add(maxFreezePeriod+grace)):
		// Kept frozen, never deleted on a guess: releasing deletes the buyer's data.
		s.set(saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonReleaseOverdue,
			"the paid period ended at "+expiry.UTC().Format(time.RFC3339)+", longer ago than KooGallery's longest freeze period (15 days), "+
				"and no releaseInstance arrived: look for a failed release under Service Interface Messages in the Seller Console and re-send it, "+
				"or release the tenant with kubectl delete mpi")
		return true
	case expiry != nil && !s.now.Before(expiry.Add(grace)):
		s.requeueIn(expiry.Add(maxFreezePeriod + grace).Sub(s.now))
		s.set(saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonExpired,
			"the paid period ended at "+expiry.UTC().Format(time.RFC3339)+" (grace "+grace.String()+
				"): workloads scaled to zero, ingress blocked, data kept; a renewal moves the expiry")
		return true
	}
	if expiry != nil {
		s.requeueIn(expiry.Add(grace).Sub(s.now))
	}
	s.set(saasv1alpha1.ConditionFrozen, metav1.ConditionFalse, saasv1alpha1.ReasonActive, "the tenant is active")
	return false
}

// scalableKinds have spec.replicas that freezing sets to zero.
var scalableKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "ReplicaSet": true}

// adjustForFreeze rewrites a rendered workload object for the freeze state, given the live
// object (nil when it does not exist yet) and the count the inventory remembers (nil if none):
//   - frozen: replicas 0 (rememberReplicas recorded the count to restore first); CronJobs
//     suspended.
//   - active: the plan's replicas when it sets them; else the remembered count; else the live
//     count, so that a workload whose replicas someone else owns (an HPA) keeps them.
func adjustForFreeze(desired, live *unstructured.Unstructured, frozen bool, remembered *int32) {
	kind := desired.GetKind()
	switch {
	case kind == "CronJob" && frozen:
		_ = unstructured.SetNestedField(desired.Object, true, "spec", "suspend")
	case scalableKinds[kind] && frozen:
		_ = unstructured.SetNestedField(desired.Object, int64(0), "spec", "replicas")
	case scalableKinds[kind]:
		if _, set, _ := unstructured.NestedFieldNoCopy(desired.Object, "spec", "replicas"); set {
			return
		}
		switch {
		case remembered != nil:
			_ = unstructured.SetNestedField(desired.Object, int64(*remembered), "spec", "replicas")
		case live != nil:
			n, _, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
			_ = unstructured.SetNestedField(desired.Object, n, "spec", "replicas")
		}
	}
}

// rememberReplicas records in the inventory the replica count of each workload that a freeze is
// about to scale down and has no count recorded yet, and writes it before anything is scaled.
// The live copies are at least as new as our last apply (Reconciler.live), so a count just
// restored by an unfreeze is never read as the zero before it.
func (r *Reconciler) rememberReplicas(ctx context.Context, s *scope, objs, lives []*unstructured.Unstructured) error {
	changed := false
	for i, obj := range objs {
		if !scalableKinds[obj.GetKind()] {
			continue
		}
		ref := refOf(obj)
		if e := s.entry(ref); e != nil && e.FrozenReplicas != nil {
			continue
		}
		n, err := r.replicasToRestore(ctx, obj, lives[i])
		if err != nil {
			return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
		}
		s.entryFor(ref).FrozenReplicas = &n
		changed = true
	}
	if !changed {
		return nil
	}
	return r.saveInventory(ctx, s)
}

// replicasToRestore is the count a workload about to be frozen runs with: the live object's, else
// the plan's, else 1. A live workload at zero may have been frozen by a release of the operator
// that kept the count in an annotation on it (AnnotationFrozenReplicas), which the cache does not
// hold: that one is read from the API server.
func (r *Reconciler) replicasToRestore(ctx context.Context, desired, live *unstructured.Unstructured) (int32, error) {
	if live == nil {
		if n, found, _ := unstructured.NestedInt64(desired.Object, "spec", "replicas"); found {
			return clampReplicas(n), nil
		}
		return 1, nil
	}
	n, found, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
	if !found {
		return 1, nil
	}
	if n != 0 {
		return clampReplicas(n), nil
	}
	full := &unstructured.Unstructured{}
	full.SetGroupVersionKind(live.GroupVersionKind())
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: desired.GetNamespace(), Name: desired.GetName()}, full); err != nil {
		return 0, client.IgnoreNotFound(err)
	}
	if v, err := strconv.ParseInt(full.GetAnnotations()[saasv1alpha1.AnnotationFrozenReplicas], 10, 32); err == nil && v >= 0 {
		return int32(v), nil
	}
	return 0, nil
}

func clampReplicas(n int64) int32 {
	return int32(max(0, min(n, math.MaxInt32)))
}

// saveInventory writes status.resources alone, now, so that what the pass does next can rely on
// it being recorded; the pass's own status write later finds it written.
func (r *Reconciler) saveInventory(ctx context.Context, s *scope) error {
	saved := s.orig.DeepCopy()
	saved.Status.Resources = s.inst.DeepCopy().Status.Resources
	if err := r.writeStatus(ctx, saved, s.orig); err != nil {
		return fmt.Errorf("recording replica counts before a freeze: %w", err)
	}
	s.orig.Status.Resources = saved.Status.Resources
	return nil
}

// freezeInventory freezes a tenant whose applied plan is gone, from the inventory alone: the
// network policies of a frozen tenant need nothing from a plan, and every workload the inventory
// lists is scaled to zero (a CronJob suspended) by a patch of that one field, its count recorded
// first. A later apply from a plan takes the field back (its generation is then past the
// inventory's, so it is re-applied) and restores the recorded count.
func (r *Reconciler) freezeInventory(ctx context.Context, s *scope) error {
	if err := r.ensureNetworkPolicies(ctx, s, &saasv1alpha1.MarketplacePlan{}); err != nil {
		return err
	}
	var lives []*unstructured.Unstructured
	for _, ref := range s.inst.Status.Resources {
		if !scalableKinds[ref.Kind] && ref.Kind != "CronJob" {
			continue
		}
		gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
		live, err := r.live(ctx, s, gvk, s.inst.Status.Namespace, ref.Name)
		if err != nil || live == nil {
			if err != nil {
				return err
			}
			continue
		}
		lives = append(lives, live)
	}
	// The live objects stand for the rendering too: there is no plan to render.
	if err := r.rememberReplicas(ctx, s, lives, lives); err != nil {
		return err
	}
	for _, live := range lives {
		if err := r.scaleToZero(ctx, live); err != nil {
			return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
		}
	}
	return nil
}

// scaleToZero patches a live workload's replicas to zero, or suspends a CronJob, unless it is
// already.
func (r *Reconciler) scaleToZero(ctx context.Context, live *unstructured.Unstructured) error {
	patch := `{"spec":{"replicas":0}}`
	if live.GetKind() == "CronJob" {
		if suspended, _, _ := unstructured.NestedBool(live.Object, "spec", "suspend"); suspended {
			return nil
		}
		patch = `{"spec":{"suspend":true}}`
	} else if n, found, _ := unstructured.NestedInt64(live.Object, "spec", "replicas"); found && n == 0 {
		return nil
	}
	err := r.Client.Patch(ctx, live, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner(render.FieldOwner))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("freezing %s %s: %w", live.GetKind(), live.GetName(), err)
	}
	return nil
}
