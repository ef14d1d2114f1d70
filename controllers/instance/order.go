package instance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// Query Order backoff: doubling from Options.OrderBackoffBase up to orderBackoffMax, kept in
// status so a broken order cannot hammer KooGallery, not even across restarts.
const (
	defaultOrderBackoffBase = 5 * time.Second
	orderBackoffMax         = 10 * time.Minute
)

// orderBackoff is the wait after the n-th consecutive failure (n ≥ 1).
func orderBackoff(base time.Duration, n int32) time.Duration {
	d := base
	for i := int32(1); i < n && d < orderBackoffMax; i++ {
		d *= 2
	}
	return min(d, orderBackoffMax)
}

// effectiveOrder is the order whose SKU the tenant should run: the latest change order, else
// the purchase.
func effectiveOrder(inst *saasv1alpha1.MarketplaceInstance) (orderID, lineID string) {
	if co := inst.Spec.CurrentOrder; co != nil {
		return co.OrderID, co.OrderLineID
	}
	return inst.Spec.Order.OrderID, inst.Spec.Order.OrderLineID
}

// ensureOrder resolves the effective order through Query Order when it is new or changed, then
// selects the plan. A nil plan means the pass stops here (the condition says why).
func (r *Reconciler) ensureOrder(ctx context.Context, s *scope) (*saasv1alpha1.MarketplacePlan, ctrl.Result, error) {
	orderID, lineID := effectiveOrder(s.inst)
	st := &s.inst.Status
	needsQuery := func() bool {
		return st.Order == nil || st.Order.OrderID != orderID || (lineID != "" && st.Order.OrderLineID != lineID)
	}
	if needsQuery() {
		if q := st.OrderQuery; q != nil && q.NextAttemptTime != nil && s.now.Before(q.NextAttemptTime.Time) {
			s.requeueIn(q.NextAttemptTime.Sub(s.now))
			return nil, ctrl.Result{RequeueAfter: s.requeueAfter}, nil
		}
		resolved, err := r.queryOrder(ctx, orderID, lineID)
		if err != nil {
			r.recordQueryFailure(s, err)
			return nil, ctrl.Result{RequeueAfter: s.requeueAfter}, nil
		}
		resolved.CheckedTime = &metav1.Time{Time: s.now}
		st.Order, st.OrderQuery = resolved, nil
		if every := r.recheckInterval(); every > 0 {
			s.requeueIn(every)
		}
	} else if r.recheckDue(s) {
		r.recheckOrder(ctx, s, orderID, lineID)
	}
	plan, reason, msg, err := r.selectPlan(ctx, s.inst)
	if err != nil {
		return nil, ctrl.Result{}, err
	}
	if plan == nil {
		s.set(saasv1alpha1.ConditionOrderResolved, metav1.ConditionFalse, reason, msg)
		// A matching plan appearing later wakes the instance through the plan watch.
		return nil, ctrl.Result{}, nil
	}
	s.set(saasv1alpha1.ConditionOrderResolved, metav1.ConditionTrue, saasv1alpha1.ReasonResolved,
		fmt.Sprintf("order %s (SKU %s) is served by plan %s", st.Order.OrderID, st.Order.SKUCode, plan.Name))
	return plan, ctrl.Result{}, nil
}

func (r *Reconciler) queryOrder(ctx context.Context, orderID, lineID string) (*saasv1alpha1.ResolvedOrder, error) {
	timeout := r.Options.OrderQueryTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	order, err := r.Orders.QueryOrder(qctx, orderID, lineID)
	if err != nil {
		return nil, err
	}
	return resolveLine(order, lineID)
}

// resolveLine picks the order line (the named one, else the first) and its product.
func resolveLine(order *openapi.Order, lineID string) (*saasv1alpha1.ResolvedOrder, error) {
	var line *openapi.OrderLine
	for i := range order.Lines {
		if lineID == "" || order.Lines[i].OrderLineID == lineID {
			line = &order.Lines[i]
			break
		}
	}
	if line == nil {
		return nil, fmt.Errorf("order %s has no order line %s", order.OrderID, lineID)
	}
	if len(line.Products) == 0 {
		return nil, fmt.Errorf("order line %s has no product", line.OrderLineID)
	}
	p := line.Products[0]
	res := &saasv1alpha1.ResolvedOrder{
		OrderID: order.OrderID, OrderLineID: line.OrderLineID, OrderType: order.OrderType,
		ProductID: p.ProductID, SKUCode: p.SKUCode, ChargingMode: line.ChargingMode,
		PeriodType: line.PeriodType, PeriodNum: int32(min(line.PeriodNum, 1<<30)), //nolint:gosec // bounded above
		LinearValue: int64(max(p.LinearValue, 0)), ExtendParams: extendParams(order.ExtendParams, line.ExtendParams),
	}
	if !line.ExpireTime.IsZero() {
		t := metav1.NewTime(line.ExpireTime.UTC())
		res.ExpireTime = &t
	}
	return res, nil
}

// backOffQuery records a failed Query Order in status.orderQuery and schedules the next attempt.
func (r *Reconciler) backOffQuery(s *scope, err error) *saasv1alpha1.OrderQueryStatus {
	q := s.inst.Status.OrderQuery
	if q == nil {
		q = &saasv1alpha1.OrderQueryStatus{}
	}
	q.Failures++
	base := r.Options.OrderBackoffBase
	if base == 0 {
		base = defaultOrderBackoffBase
	}
	wait := orderBackoff(base, q.Failures)
	next := metav1.NewTime(s.now.Add(wait))
	q.NextAttemptTime = &next
	q.LastError = truncate(err.Error(), 1024)
	s.inst.Status.OrderQuery = q
	s.requeueIn(wait)
	return q
}

// maxExtendParams bounds the buyer parameters kept (the CRD's limits).
const (
	maxExtendParams     = 32
	maxExtendParamName  = 64
	maxExtendParamValue = 256
)

// extendParams merges the order's and the order line's buyer parameters, the line's winning,
// sorted by name. Parameters over the CRD's limits are left out rather than cut: a truncated
// e-mail domain would be a wrong one.
func extendParams(order, line []openapi.ExtendParam) []saasv1alpha1.ExtendParam {
	byName := map[string]string{}
	for _, p := range append(slices.Clone(order), line...) {
		if p.Name == "" || len(p.Name) > maxExtendParamName || len(p.Value) > maxExtendParamValue {
			continue
		}
		byName[p.Name] = p.Value
	}
	names := slices.Sorted(maps.Keys(byName))
	out := make([]saasv1alpha1.ExtendParam, 0, min(len(names), maxExtendParams))
	for _, n := range names[:min(len(names), maxExtendParams)] {
		out = append(out, saasv1alpha1.ExtendParam{Name: n, Value: byName[n]})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (r *Reconciler) recordQueryFailure(s *scope, err error) {
	q := r.backOffQuery(s, err)
	next := q.NextAttemptTime

	reason := saasv1alpha1.ReasonQueryFailed
	if openapi.IsNotFound(err) {
		reason = saasv1alpha1.ReasonOrderNotFound
	}
	s.set(saasv1alpha1.ConditionOrderResolved, metav1.ConditionFalse, reason,
		fmt.Sprintf("Query Order failed %d time(s), next attempt at %s: %s",
			q.Failures, next.UTC().Format(time.RFC3339), truncate(err.Error(), 512)))
}

// selectPlan finds the plan: spec.plan when pinned, else the one plan serving the order's SKU.
// A nil plan comes with the condition reason and message.
func (r *Reconciler) selectPlan(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) (*saasv1alpha1.MarketplacePlan, string, string, error) {
	if name := inst.Spec.Plan; name != "" {
		plan := &saasv1alpha1.MarketplacePlan{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, plan); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, saasv1alpha1.ReasonPlanNotFound, fmt.Sprintf("spec.plan names MarketplacePlan %q, which does not exist", name), nil
			}
			return nil, "", "", fmt.Errorf("getting plan %s: %w", name, err)
		}
		return plan, "", "", nil
	}
	order := inst.Status.Order
	plans := &saasv1alpha1.MarketplacePlanList{}
	if err := r.Client.List(ctx, plans, client.MatchingFields{planSKUIndex: render.SKUKey(order.ProductID, order.SKUCode)}); err != nil {
		return nil, "", "", fmt.Errorf("listing plans: %w", err)
	}
	plan, serving := render.PlanForSKU(plans.Items, order.ProductID, order.SKUCode)
	switch {
	case plan != nil:
		return plan, "", "", nil
	case len(serving) == 0:
		return nil, saasv1alpha1.ReasonUnknownSKU, fmt.Sprintf("no MarketplacePlan serves product %s SKU %s; add it to a plan's spec.skus or pin spec.plan",
			order.ProductID, order.SKUCode), nil
	default:
		return nil, saasv1alpha1.ReasonAmbiguousPlan, fmt.Sprintf("plans %v all serve SKU %s; keep it in one plan or pin spec.plan", serving, order.SKUCode), nil
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
