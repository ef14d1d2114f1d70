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
// the ones that left the plan. A freeze first records each workload's replica count in the
// inventory, in a status write of its own, and only then scales it down: a count is never lost
// to a pass that dies in between, nor read from a workload already scaled to zero.
func (r *Reconciler) ensureWorkload(ctx context.Context, s *scope, plan *saasv1alpha1.MarketplacePlan) error {
	objs, err := render.Workload(s.inst, plan, r.Options.Policy)
	if err == nil {
		err = r.checkNamespaced(objs)
	}
	if err != nil {
		s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonRenderFailed,
			truncate(fmt.Sprintf("plan %s: %v", plan.Name, err), 1024))
		return reconcileTerminal(err)
	}
	lives := make([]*unstructured.Unstructured, len(objs))
	for i, obj := range objs {
		if lives[i], err = r.live(ctx, s, obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName()); err != nil {
			return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
		}
	}
	if s.frozen {
		if err := r.rememberReplicas(ctx, s, objs, lives); err != nil {
			return err
		}
	}
	desired := make([]saasv1alpha1.ResourceRef, 0, len(objs))
	var applyErrs []error
	for i, obj := range objs {
		ref := refOf(obj)
		desired = append(desired, ref)
		var remembered *int32
		if e := s.entry(ref); e != nil {
			remembered = e.FrozenReplicas
		}
		adjustForFreeze(obj, lives[i], s.frozen, remembered)
		if err := r.apply(ctx, s, obj, lives[i]); err != nil {
			applyErrs = append(applyErrs, err)
		}
	}
	if err := errors.Join(applyErrs...); err != nil {
		// What was applied before stays in the inventory, so a later pass still prunes it.
		return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
	}
	if err := r.prune(ctx, s, desired); err != nil {
		return err
	}
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
	for _, old := range slices.Clone(s.inst.Status.Resources) {
		if tenantBase(old) || slices.ContainsFunc(desired, func(d saasv1alpha1.ResourceRef) bool { return sameObject(d, old) }) {
			continue
		}
		gv, err := schema.ParseGroupVersion(old.APIVersion)
		if err != nil {
			s.forget(old)
			continue
		}
		if err := r.deleteIfOurs(ctx, s, gv.WithKind(old.Kind), s.inst.Status.Namespace, old.Name); err != nil {
			return r.degraded(s, saasv1alpha1.ReasonApplyFailed, fmt.Errorf("pruning: %w", err))
		}
	}
	return nil
}

// tenantBase reports the objects every tenant has whatever its plan (the namespace, its quota
// and network policies), which their own steps apply and delete.
func tenantBase(ref saasv1alpha1.ResourceRef) bool {
	switch {
	case ref.APIVersion == "v1" && ref.Kind == "Namespace":
		return true
	case ref.APIVersion == "v1" && ref.Kind == "ResourceQuota":
		return ref.Name == render.QuotaName
	case ref.APIVersion == "v1" && ref.Kind == "LimitRange":
		return ref.Name == render.LimitRangeName
	case ref.APIVersion == "v1" && ref.Kind == "ConfigMap":
		return ref.Name == render.EntitlementConfigMapName
	case ref.APIVersion == "networking.k8s.io/v1" && ref.Kind == "NetworkPolicy":
		return ref.Name == render.DenyIngressPolicyName || ref.Name == render.AllowIngressPolicyName || ref.Name == render.EgressPolicyName
	}
	return false
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
		gvk := appsv1.SchemeGroupVersion.WithKind(ref.Kind)
		live, answered := s.answers[refFor(gvk, ref.Name)]
		if !answered {
			var err error
			if live, err = r.live(ctx, s, gvk, s.inst.Status.Namespace, ref.Name); err != nil {
				return nil, err
			}
		}
		if live == nil || !workloadReady(live) {
			waiting = append(waiting, ref.Kind+" "+ref.Name)
		}
	}
	return waiting, nil
}

// workloadReady: its controller saw the latest spec, and every wanted replica is updated and
// ready (for Deployments, also the Available condition). u is at least as new as our last apply
// (Reconciler.live): an older copy's status can look ready for the replicas it wanted, such as
// zero before an unfreeze.
func workloadReady(u *unstructured.Unstructured) bool {
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
