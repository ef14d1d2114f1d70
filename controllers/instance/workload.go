package instance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// ensureWorkload applies the plan's rendered objects (adjusted for the freeze state) and prunes
// the ones that left the plan. status.resources is the applied set.
func (r *Reconciler) ensureWorkload(ctx context.Context, s *scope, plan *saasv1alpha1.MarketplacePlan) error {
	objs, err := render.Workload(s.inst, plan, r.Options.Policy)
	if err != nil {
		s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonRenderFailed,
			truncate(fmt.Sprintf("plan %s: %v", plan.Name, err), 1024))
		return reconcileTerminal(err)
	}
	if err := r.checkNamespaced(objs); err != nil {
		s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonRenderFailed,
			truncate(fmt.Sprintf("plan %s: %v", plan.Name, err), 1024))
		return reconcileTerminal(err)
	}
	desired := make([]saasv1alpha1.ResourceRef, 0, len(objs))
	s.workloadHashes = make(map[saasv1alpha1.ResourceRef]string, len(objs))
	var applyErrs []error
	for _, obj := range objs {
		ref := refOf(obj)
		desired = append(desired, ref)
		live, err := r.live(ctx, obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName())
		if err != nil {
			applyErrs = append(applyErrs, err)
			continue
		}
		adjustForFreeze(obj, live, s.frozen)
		if s.workloadHashes[ref], err = r.desiredHash(s.inst, obj); err != nil {
			applyErrs = append(applyErrs, err)
			continue
		}
		if err := r.apply(ctx, s.inst, obj, live); err != nil {
			applyErrs = append(applyErrs, err)
		}
	}
	sortRefs(desired)
	if err := errors.Join(applyErrs...); err != nil {
		// Keep what was applied before too, so a later pass still prunes it.
		s.inst.Status.Resources = union(s.inst.Status.Resources, desired)
		return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
	}
	if err := r.prune(ctx, s, desired); err != nil {
		return err
	}
	s.inst.Status.Resources = desired
	s.inst.Status.Plan = plan.Name
	return nil
}

// checkNamespaced refuses kinds the API server does not serve and cluster-scoped kinds: a
// tenant's workload lives in its namespace, and the client would silently drop the namespace
// of a cluster-scoped object. render refuses the well-known ones; this catches the rest.
func (r *Reconciler) checkNamespaced(objs []*unstructured.Unstructured) error {
	mapper := r.Client.RESTMapper()
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: kind not served by the API server: %w", gvk.Kind, o.GetName(), err)
		}
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			return fmt.Errorf("%s %s: cluster-scoped kinds cannot be part of a tenant workload", gvk.Kind, o.GetName())
		}
	}
	return nil
}

// prune deletes the objects applied before that the plan no longer renders.
func (r *Reconciler) prune(ctx context.Context, s *scope, desired []saasv1alpha1.ResourceRef) error {
	for _, old := range s.inst.Status.Resources {
		if slices.Contains(desired, old) {
			continue
		}
		gv, err := schema.ParseGroupVersion(old.APIVersion)
		if err != nil {
			continue
		}
		if err := r.deleteIfOurs(ctx, s.inst, gv.WithKind(old.Kind), s.inst.Status.Namespace, old.Name); err != nil {
			return r.degraded(s, saasv1alpha1.ReasonApplyFailed, fmt.Errorf("pruning: %w", err))
		}
	}
	return nil
}

// ensureReadiness sets Provisioned from the workload's own readiness, and publishes the
// buyer's URLs once ready.
func (r *Reconciler) ensureReadiness(ctx context.Context, s *scope, plan *saasv1alpha1.MarketplacePlan) error {
	if cond := s.inst.Status.Conditions; isTrueIn(cond, saasv1alpha1.ConditionDegraded) &&
		reasonIn(cond, saasv1alpha1.ConditionDegraded) != saasv1alpha1.ReasonDowngradeRefused {
		s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionFalse, saasv1alpha1.ReasonAvailable, "all steps succeeded")
	}
	notReady, err := r.notReady(ctx, s)
	if err != nil {
		return err
	}
	switch {
	case s.frozen:
		s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionTrue, saasv1alpha1.ReasonAvailable,
			fmt.Sprintf("tenant %s on plan %s is provisioned (frozen)", s.inst.Status.Namespace, plan.Name))
	case len(notReady) > 0:
		reason := saasv1alpha1.ReasonProvisioning
		if s.orig.Status.Plan != "" && s.orig.Status.Plan != plan.Name ||
			reasonIn(s.orig.Status.Conditions, saasv1alpha1.ConditionProvisioned) == saasv1alpha1.ReasonUpgrading {
			reason = saasv1alpha1.ReasonUpgrading
		}
		s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, reason,
			fmt.Sprintf("waiting for %s on plan %s", strings.Join(notReady, ", "), plan.Name))
		return nil
	default:
		s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionTrue, saasv1alpha1.ReasonAvailable,
			fmt.Sprintf("tenant %s on plan %s is available", s.inst.Status.Namespace, plan.Name))
	}
	info, err := render.AppInfo(s.inst, plan)
	if err != nil {
		s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonRenderFailed, truncate(err.Error(), 1024))
		return reconcileTerminal(err)
	}
	s.inst.Status.AppInfo = &info
	return nil
}

// notReady lists the workload objects that do not report ready yet (Deployments and
// StatefulSets; other kinds are ready once they exist).
func (r *Reconciler) notReady(ctx context.Context, s *scope) ([]string, error) {
	var waiting []string
	for _, ref := range s.inst.Status.Resources {
		if ref.APIVersion != "apps/v1" || (ref.Kind != "Deployment" && ref.Kind != "StatefulSet") {
			continue
		}
		live, err := r.live(ctx, appsv1.SchemeGroupVersion.WithKind(ref.Kind), s.inst.Status.Namespace, ref.Name)
		if err != nil {
			return nil, err
		}
		if live == nil || !workloadReady(live, s.workloadHashes[ref]) {
			waiting = append(waiting, ref.Kind+" "+ref.Name)
		}
	}
	return waiting, nil
}

// workloadReady: the object is the one we last applied (hash; the cache may still hold an older
// copy, whose status can look ready for the replicas it wanted, such as zero before an
// unfreeze), its controller saw the latest spec, and every wanted replica is updated and ready
// (for Deployments, also the Available condition).
func workloadReady(u *unstructured.Unstructured, appliedHash string) bool {
	if u.GetAnnotations()[annotationAppliedHash] != appliedHash {
		return false
	}
	gen := u.GetGeneration()
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	want, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !found {
		want = 1
	}
	updated, _, _ := unstructured.NestedInt64(u.Object, "status", "updatedReplicas")
	ready, _, _ := unstructured.NestedInt64(u.Object, "status", "readyReplicas")
	if observed < gen || updated < want || ready < want {
		return false
	}
	if u.GetKind() != "Deployment" && u.GetKind() != "" {
		return true
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == string(appsv1.DeploymentAvailable) {
			return m["status"] == "True"
		}
	}
	return want == 0
}

func refOf(u *unstructured.Unstructured) saasv1alpha1.ResourceRef {
	return saasv1alpha1.ResourceRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName()}
}

func sortRefs(refs []saasv1alpha1.ResourceRef) {
	slices.SortFunc(refs, func(a, b saasv1alpha1.ResourceRef) int {
		return strings.Compare(a.APIVersion+"/"+a.Kind+"/"+a.Name, b.APIVersion+"/"+b.Kind+"/"+b.Name)
	})
}

func union(a, b []saasv1alpha1.ResourceRef) []saasv1alpha1.ResourceRef {
	out := slices.Clone(b)
	for _, r := range a {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	sortRefs(out)
	return out
}

func isTrueIn(conds []metav1.Condition, t string) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func reasonIn(conds []metav1.Condition, t string) string {
	for _, c := range conds {
		if c.Type == t {
			return c.Reason
		}
	}
	return ""
}
