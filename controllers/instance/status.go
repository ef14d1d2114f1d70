package instance

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// scope carries one reconcile pass: the instance as read (for the status patch), the instance
// being changed, and what the steps found.
type scope struct {
	orig *saasv1alpha1.MarketplaceInstance
	inst *saasv1alpha1.MarketplaceInstance
	now  time.Time
	// frozen is whether the tenant must be frozen in this pass (spec.state or expiry).
	frozen bool
	// requeueAfter is the soonest time-based wake-up a step asked for (expiry, backoff,
	// retention); zero means none.
	requeueAfter time.Duration
	// answers are the API server's answers to this pass's applies, by object: readiness read
	// from one is as fresh as a read from the API server, which a pass that just created a
	// Deployment would otherwise need (the cache has not seen it yet).
	answers map[saasv1alpha1.ResourceRef]*unstructured.Unstructured
}

// answered records the answer to an apply of ref (an identity: refFor, refOf).
func (s *scope) answered(ref saasv1alpha1.ResourceRef, u *unstructured.Unstructured) {
	if s.answers == nil {
		s.answers = map[saasv1alpha1.ResourceRef]*unstructured.Unstructured{}
	}
	s.answers[ref] = u
}

func newScope(inst *saasv1alpha1.MarketplaceInstance, now time.Time) *scope {
	return &scope{orig: inst.DeepCopy(), inst: inst, now: now}
}

// requeueIn records a time-based wake-up, keeping the soonest.
func (s *scope) requeueIn(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	if s.requeueAfter == 0 || d < s.requeueAfter {
		s.requeueAfter = d
	}
}

func (s *scope) set(condType string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.inst.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: s.inst.Generation,
	})
}

func (s *scope) isTrue(condType string) bool {
	return meta.IsStatusConditionTrue(s.inst.Status.Conditions, condType)
}

func (s *scope) setPaused(paused bool) {
	if paused {
		s.set(saasv1alpha1.ConditionPaused, metav1.ConditionTrue, saasv1alpha1.ReasonPaused,
			"changes are paused by spec.paused or the "+saasv1alpha1.AnnotationPaused+" annotation")
		return
	}
	if meta.FindStatusCondition(s.inst.Status.Conditions, saasv1alpha1.ConditionPaused) != nil {
		meta.RemoveStatusCondition(&s.inst.Status.Conditions, saasv1alpha1.ConditionPaused)
	}
}

func (s *scope) setDebugOrder() {
	msg := "KooGallery debug order (testFlag): resolved and answered, never provisioned"
	s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonDebugOrder, msg)
}

func isPaused(inst *saasv1alpha1.MarketplaceInstance) bool {
	return inst.Spec.Paused || inst.Annotations[saasv1alpha1.AnnotationPaused] == "true"
}

// summarize derives Ready and the phase from the other conditions, so they can never disagree.
func summarize(inst *saasv1alpha1.MarketplaceInstance) {
	conds := inst.Status.Conditions
	ready, phase := readiness(conds)
	ready.Type, ready.ObservedGeneration = saasv1alpha1.ConditionReady, inst.Generation
	if ready.Message == "" {
		ready.Message = ready.Reason
	}
	if d := meta.FindStatusCondition(conds, saasv1alpha1.ConditionDegraded); d != nil && d.Status == metav1.ConditionTrue && phase == "Provisioning" {
		phase = "Failed"
	}
	if meta.IsStatusConditionTrue(conds, saasv1alpha1.ConditionPaused) {
		phase = "Paused"
	}
	meta.SetStatusCondition(&inst.Status.Conditions, ready)
	inst.Status.Phase = phase
}

// readiness is Ready's status, reason and message, and the phase, by precedence: released,
// order not resolved, frozen, then the provisioning state.
func readiness(conds []metav1.Condition) (metav1.Condition, string) {
	notReady := func(c *metav1.Condition) metav1.Condition {
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: c.Reason, Message: c.Message}
	}
	if c := meta.FindStatusCondition(conds, saasv1alpha1.ConditionReleased); c != nil && c.Status == metav1.ConditionTrue {
		return notReady(c), "Releasing"
	}
	if c := meta.FindStatusCondition(conds, saasv1alpha1.ConditionOrderResolved); c == nil || c.Status != metav1.ConditionTrue {
		if c == nil {
			return metav1.Condition{Status: metav1.ConditionFalse, Reason: saasv1alpha1.ReasonProvisioning, Message: "waiting for the order to resolve"}, "Pending"
		}
		if c.Reason == saasv1alpha1.ReasonQueryFailed {
			return notReady(c), "Pending"
		}
		return notReady(c), "Failed"
	}
	if c := meta.FindStatusCondition(conds, saasv1alpha1.ConditionFrozen); c != nil && c.Status == metav1.ConditionTrue {
		return notReady(c), "Frozen"
	}
	prov := meta.FindStatusCondition(conds, saasv1alpha1.ConditionProvisioned)
	switch {
	case prov == nil:
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: saasv1alpha1.ReasonProvisioning, Message: "provisioning the tenant"}, "Provisioning"
	case prov.Status == metav1.ConditionTrue:
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: saasv1alpha1.ReasonAvailable, Message: prov.Message}, "Ready"
	case prov.Reason == saasv1alpha1.ReasonUpgrading:
		return notReady(prov), "Upgrading"
	case prov.Reason == saasv1alpha1.ReasonDebugOrder:
		return notReady(prov), "Debug"
	case prov.Reason == saasv1alpha1.ReasonRenderFailed || prov.Reason == saasv1alpha1.ReasonConflict:
		return notReady(prov), "Failed"
	default:
		return notReady(prov), "Provisioning"
	}
}

// patchStatus writes status once, by merge patch, only when something changed, and emits an
// event for each condition that changed status. The reconciler is status's only writer (the
// endpoint records its calls in an annotation, which mergeCalls copies here), and s.orig is at
// least as new as its last write (freshInstance), so a patch against it loses nothing.
func (r *Reconciler) patchStatus(ctx context.Context, s *scope) error {
	if !s.isTrue(saasv1alpha1.ConditionPaused) {
		s.inst.Status.ObservedGeneration = s.inst.Generation
	}
	summarize(s.inst)
	mergeCalls(s.inst)
	if equality.Semantic.DeepEqual(s.orig.Status, s.inst.Status) {
		return nil
	}
	// Diff status only: the finalizer patch may have moved metadata (resourceVersion) since
	// s.orig was read, and a resourceVersion in the patch would turn it into an optimistic lock.
	base := s.orig.DeepCopy()
	base.ObjectMeta = *s.inst.ObjectMeta.DeepCopy()
	err := r.writeStatus(ctx, s.inst, base)
	switch {
	case err == nil:
		r.emitTransitions(s)
		return nil
	case apierrors.IsNotFound(err):
		return nil
	}
	return fmt.Errorf("patching status: %w", err)
}

// writeStatus merge-patches inst's status against base, the reconciler's only way to write it:
// the write is remembered before it is sent (writtenStatus), and forgotten if it fails.
func (r *Reconciler) writeStatus(ctx context.Context, inst, base *saasv1alpha1.MarketplaceInstance) error {
	undo := r.written.writing(inst)
	err := r.Client.Status().Patch(ctx, inst, client.MergeFrom(base))
	if err != nil {
		undo()
	}
	return err
}

// transitionEvents are the conditions whose changes are worth an event.
var transitionEvents = []string{
	saasv1alpha1.ConditionReady, saasv1alpha1.ConditionOrderResolved, saasv1alpha1.ConditionFrozen,
	saasv1alpha1.ConditionDegraded, saasv1alpha1.ConditionReleased, saasv1alpha1.ConditionPaused,
}

// firstWorthAnEvent reports whether a condition's first setting is worth an event: it reaching
// True, except an order resolving (the Ready event that follows says it), and an order failing
// to resolve. An event is a write of its own to the API server, per tenant.
func firstWorthAnEvent(condType string, status metav1.ConditionStatus) bool {
	if condType == saasv1alpha1.ConditionOrderResolved {
		return status == metav1.ConditionFalse
	}
	return status == metav1.ConditionTrue
}

func (r *Reconciler) emitTransitions(s *scope) {
	if r.Recorder == nil {
		return
	}
	for _, t := range transitionEvents {
		now := meta.FindStatusCondition(s.inst.Status.Conditions, t)
		if now == nil {
			continue
		}
		before := meta.FindStatusCondition(s.orig.Status.Conditions, t)
		if before != nil && before.Status == now.Status && before.Reason == now.Reason {
			continue
		}
		if before == nil && !firstWorthAnEvent(t, now.Status) {
			continue
		}
		eventType := corev1.EventTypeNormal
		if (t == saasv1alpha1.ConditionDegraded && now.Status == metav1.ConditionTrue) ||
			(t == saasv1alpha1.ConditionOrderResolved && now.Status == metav1.ConditionFalse) {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(s.inst, nil, eventType, now.Reason, t, "%s=%s: %s", t, now.Status, now.Message)
	}
}
