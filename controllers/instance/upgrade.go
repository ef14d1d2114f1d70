package instance

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// ensurePlanFits returns the plan to render. Moving to another plan is refused while the
// tenant's current usage does not fit the new plan's quota: the tenant stays on its current
// plan with a DowngradeRefused condition until usage shrinks (an update of its quota brings us back, see quotaWaiters)
// or the order changes.
func (r *Reconciler) ensurePlanFits(ctx context.Context, s *scope, target *saasv1alpha1.MarketplacePlan) (*saasv1alpha1.MarketplacePlan, error) {
	current := s.inst.Status.Plan
	if current == "" || current == target.Name || s.inst.Status.Namespace == "" {
		r.clearDowngrade(s)
		return target, nil
	}
	quota := &corev1.ResourceQuota{}
	// The cache holds no quota's usage (managercache.TrimChild): a plan change is rare.
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.inst.Status.Namespace, Name: render.QuotaName}, quota)
	if apierrors.IsNotFound(err) {
		r.clearDowngrade(s)
		return target, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting tenant quota: %w", err)
	}
	short := render.QuotaShortfall(quota.Status.Used, render.Quota(target, render.Units(s.inst.Status.Order)))
	if len(short) == 0 {
		r.clearDowngrade(s)
		return target, nil
	}
	r.quotaWaiters.wait(s.inst.Name)
	s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionTrue, saasv1alpha1.ReasonDowngradeRefused,
		fmt.Sprintf("staying on plan %s: current usage does not fit plan %s (%s)", current, target.Name, strings.Join(short, "; ")))
	stay := &saasv1alpha1.MarketplacePlan{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: current}, stay); err != nil {
		if apierrors.IsNotFound(err) {
			// The current plan is gone: there is nothing to stay on.
			return target, nil
		}
		return nil, fmt.Errorf("getting current plan %s: %w", current, err)
	}
	return stay, nil
}

func (r *Reconciler) clearDowngrade(s *scope) {
	r.quotaWaiters.done(s.inst.Name)
	if reasonIn(s.inst.Status.Conditions, saasv1alpha1.ConditionDegraded) == saasv1alpha1.ReasonDowngradeRefused {
		s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionFalse, saasv1alpha1.ReasonResolved, "the tenant runs the plan its order asks for")
	}
}
