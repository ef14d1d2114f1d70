package instance

import (
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
// object (nil when it does not exist yet):
//   - frozen: replicas 0, remembering in an annotation the count to restore (the live count at
//     the moment of freezing, which may differ from the plan's if someone scaled it); CronJobs
//     suspended.
//   - active: the plan's replicas when it sets them; else the remembered count; else the live
//     count, so that a workload whose replicas someone else owns (an HPA) keeps them.
func adjustForFreeze(desired, live *unstructured.Unstructured, frozen bool) {
	kind := desired.GetKind()
	switch {
	case kind == "CronJob" && frozen:
		_ = unstructured.SetNestedField(desired.Object, true, "spec", "suspend")
	case scalableKinds[kind] && frozen:
		restore := rememberedReplicas(desired, live)
		_ = unstructured.SetNestedField(desired.Object, int64(0), "spec", "replicas")
		setAnnotation(desired, saasv1alpha1.AnnotationFrozenReplicas, strconv.FormatInt(restore, 10))
	case scalableKinds[kind]:
		if _, set, _ := unstructured.NestedFieldNoCopy(desired.Object, "spec", "replicas"); set {
			return
		}
		if live == nil {
			return
		}
		n, ok := frozenAnnotation(live)
		if !ok {
			n, _, _ = unstructured.NestedInt64(live.Object, "spec", "replicas")
		}
		_ = unstructured.SetNestedField(desired.Object, n, "spec", "replicas")
	}
}

// rememberedReplicas is the count to restore on unfreeze.
func rememberedReplicas(desired, live *unstructured.Unstructured) int64 {
	if live != nil {
		if n, ok := frozenAnnotation(live); ok {
			return n
		}
		if n, found, _ := unstructured.NestedInt64(live.Object, "spec", "replicas"); found {
			return n
		}
	}
	if n, found, _ := unstructured.NestedInt64(desired.Object, "spec", "replicas"); found {
		return n
	}
	return 1
}

func frozenAnnotation(u *unstructured.Unstructured) (int64, bool) {
	v, ok := u.GetAnnotations()[saasv1alpha1.AnnotationFrozenReplicas]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	return n, err == nil && n >= 0
}

func setAnnotation(u *unstructured.Unstructured, k, v string) {
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	u.SetAnnotations(a)
}
