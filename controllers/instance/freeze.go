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
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

const defaultFreezeGrace = time.Hour

// frozen reports whether the tenant must be frozen now: by its spec, or because its
// subscription expired more than the grace period ago (a lost freeze callback must not let a
// buyer keep using it). It also sets the Frozen condition and the wake-up at expiry.
func (r *Reconciler) frozen(s *scope) bool {
	grace := r.Options.FreezeGrace
	if grace == 0 {
		grace = defaultFreezeGrace
	}
	switch {
	case s.inst.Spec.State == saasv1alpha1.StateFrozen:
		s.set(saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonFrozenByOrder,
			"spec.state is Frozen: workloads scaled to zero, ingress blocked, data kept")
		return true
	case s.inst.Spec.ExpireTime != nil && !s.now.Before(s.inst.Spec.ExpireTime.Add(grace)):
		s.set(saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonExpired,
			"spec.expireTime "+s.inst.Spec.ExpireTime.UTC().Format(time.RFC3339)+" has passed (grace "+grace.String()+
				"): workloads scaled to zero, ingress blocked, data kept; a renewal moves expireTime")
		return true
	}
	if s.inst.Spec.ExpireTime != nil {
		s.requeueIn(s.inst.Spec.ExpireTime.Add(grace).Sub(s.now))
	}
	s.set(saasv1alpha1.ConditionFrozen, metav1.ConditionFalse, saasv1alpha1.ReasonActive, "the tenant is active")
	return false
}

// scalableKinds have spec.replicas that freezing sets to zero.
var scalableKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "ReplicaSet": true}

// adjustForFreeze rewrites a rendered workload object for the freeze state, given the live
// object (nil when it does not exist yet), the replicas to restore that the inventory holds
// (recorded) and, for a workload frozen by an operator version before the inventory, those its
// frozen-replicas annotation holds (legacy). It returns the replicas to restore, to record in
// the inventory, and whether to apply now:
//   - frozen: replicas 0 once a count to restore is recorded; until then, nothing is applied and
//     the count to record is returned (the live count at the moment of freezing, which may differ
//     from the plan's if someone scaled it). CronJobs suspended.
//   - active: the plan's replicas when it sets them; else the remembered count; else the live
//     count, so that a workload whose replicas someone else owns (an HPA) keeps them.
func adjustForFreeze(desired, live *unstructured.Unstructured, recorded, legacy *int32, frozen bool) (*int32, bool) {
	kind := desired.GetKind()
	switch {
	case kind == "CronJob" && frozen:
		_ = unstructured.SetNestedField(desired.Object, true, "spec", "suspend")
	case scalableKinds[kind] && frozen:
		if recorded == nil {
			return ptr.To(rememberedReplicas(desired, live, legacy)), false
		}
		_ = unstructured.SetNestedField(desired.Object, int64(0), "spec", "replicas")
		return recorded, true
	case scalableKinds[kind]:
		if _, set, _ := unstructured.NestedFieldNoCopy(desired.Object, "spec", "replicas"); set {
			return nil, true
		}
		if live == nil {
			return nil, true
		}
		n, _, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
		switch {
		case recorded != nil:
			n = int64(*recorded)
		case legacy != nil:
			n = int64(*legacy)
		}
		_ = unstructured.SetNestedField(desired.Object, n, "spec", "replicas")
	}
	return nil, true
}

// rememberedReplicas is the count to restore on unfreeze.
func rememberedReplicas(desired, live *unstructured.Unstructured, legacy *int32) int32 {
	if legacy != nil {
		return *legacy
	}
	if live != nil {
		if n, found, _ := unstructured.NestedInt64(live.Object, "spec", "replicas"); found {
			return replicas32(n)
		}
	}
	if n, found, _ := unstructured.NestedInt64(desired.Object, "spec", "replicas"); found {
		return replicas32(n)
	}
	return 1
}

// replicas32 is n as a replica count (an int32 in every scalable kind's spec).
func replicas32(n int64) int32 {
	return int32(max(0, min(n, math.MaxInt32)))
}

// legacyFrozenReplicas reads, from the API server (the cache keeps no annotations), the
// frozen-replicas annotation that an operator version before the inventory left on a workload
// it froze. It is called only for a live workload the inventory has no entry for: once per
// workload after an upgrade.
func (r *Reconciler) legacyFrozenReplicas(ctx context.Context, obj *unstructured.Unstructured) (*int32, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(obj.GroupVersionKind())
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("getting %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	v, ok := u.GetAnnotations()[saasv1alpha1.AnnotationFrozenReplicas]
	if !ok {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return nil, nil
	}
	return ptr.To(int32(n)), nil
}
