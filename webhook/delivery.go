package webhook

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// delivery is how far a change of order has got.
type delivery int

const (
	// inProgress: the reconciler has not resolved the order, or not moved the tenant to it yet.
	inProgress delivery = iota
	// delivered: the tenant runs a plan serving the order.
	delivered
	// undeliverable: no plan serves the order's SKU, Query Order does not know the order, or the
	// tenant's usage does not fit the smaller plan; only a person can change that.
	undeliverable
)

// undeliverableReasons are the OrderResolved reasons that time does not fix.
var undeliverableReasons = map[string]bool{
	saasv1alpha1.ReasonUnknownSKU:    true,
	saasv1alpha1.ReasonAmbiguousPlan: true,
	saasv1alpha1.ReasonPlanNotFound:  true,
	saasv1alpha1.ReasonOrderNotFound: true,
}

// orderChange applies a call that changes what the buyer bought (upgradeInstance, a
// refreshInstance that converts a trial or renews with a change) and answers it by what the
// tenant runs, not by the write: KooGallery retries a failed upgrade for 3 h and then fails the
// order and refunds it, so the buyer is charged only for a change that happened.
//   - 000000 once the tenant runs a plan serving the order (waiting up to
//     Options.OrderChangeWait for the reconciler), or when a later order superseded it;
//   - 000004 while the reconciler is still on it (KooGallery calls again);
//   - 000005 with the reason when it cannot be delivered (no plan serves the SKU, Query Order
//     does not know the order, the tenant's usage does not fit the smaller plan). The SRE sees
//     the same reason in the instance's conditions, its events and the unresolved-order alert,
//     and has until KooGallery gives up to fix it.
func (s *Server) orderChange(ctx context.Context, c *call, id, orderID string, mutate mutation) any {
	inst, out, r := s.changeInstance(ctx, c, id, orderID, mutate)
	if inst == nil || out == stale || currentOrderID(inst) != orderID {
		return r
	}
	d, msg := s.awaitDelivery(ctx, inst, orderID)
	switch d {
	case delivered:
		return success(msg)
	case undeliverable:
		ctrl.LoggerFrom(ctx).Info("marketplace order change cannot be delivered", "marketplaceInstance", inst.Name, "order", orderID, "reason", msg)
		return reply(koogallery.ResultInternalError, truncateRunes(msg, 255))
	}
	return reply(koogallery.ResultProcessing, truncateRunes(msg, 255))
}

// awaitDelivery polls the cache for the reconciler's verdict on inst's change to orderID, for up to
// Options.OrderChangeWait.
func (s *Server) awaitDelivery(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, orderID string) (delivery, string) {
	gen := inst.Generation
	deadline := time.NewTimer(s.opts.OrderChangeWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d, msg := deliveryOf(inst, gen, orderID)
		if d != inProgress {
			return d, msg
		}
		select {
		case <-ctx.Done():
			return d, msg
		case <-deadline.C:
			return d, msg
		case <-tick.C:
		}
		fresh, err := s.getByName(ctx, inst.Name)
		if err != nil || fresh == nil {
			return d, msg
		}
		inst = fresh
	}
}

// deliveryOf reads the reconciler's verdict on the change to orderID from a copy of the instance
// at least as new as generation gen (the write that made the change).
func deliveryOf(inst *saasv1alpha1.MarketplaceInstance, gen int64, orderID string) (delivery, string) {
	pending := fmt.Sprintf("order %s is being applied; call again", orderID)
	switch {
	case inst.Generation < gen || inst.Status.ObservedGeneration < gen:
		return inProgress, pending
	case currentOrderID(inst) != orderID:
		return delivered, "superseded by order " + currentOrderID(inst)
	}
	conds := inst.Status.Conditions
	if c := meta.FindStatusCondition(conds, saasv1alpha1.ConditionDegraded); c != nil && c.Status == metav1.ConditionTrue && c.Reason == saasv1alpha1.ReasonDowngradeRefused {
		return undeliverable, fmt.Sprintf("order %s cannot be delivered (%s): %s", orderID, c.Reason, c.Message)
	}
	c := meta.FindStatusCondition(conds, saasv1alpha1.ConditionOrderResolved)
	switch {
	case c == nil || c.ObservedGeneration < gen:
		return inProgress, pending
	case c.Status == metav1.ConditionFalse && undeliverableReasons[c.Reason]:
		return undeliverable, fmt.Sprintf("order %s cannot be delivered (%s): %s", orderID, c.Reason, c.Message)
	case c.Status != metav1.ConditionTrue || inst.Status.Order == nil || inst.Status.Order.OrderID != orderID:
		return inProgress, pending
	}
	// Provisioned is set only once every object of the plan was applied in that pass; its
	// rollout (Upgrading) may still run.
	p := meta.FindStatusCondition(conds, saasv1alpha1.ConditionProvisioned)
	switch {
	case p == nil || p.ObservedGeneration < gen:
		return inProgress, pending
	case p.Reason == saasv1alpha1.ReasonRenderFailed:
		return undeliverable, fmt.Sprintf("order %s cannot be delivered (%s): %s", orderID, p.Reason, p.Message)
	case p.Reason == saasv1alpha1.ReasonAvailable || p.Reason == saasv1alpha1.ReasonUpgrading || p.Reason == saasv1alpha1.ReasonProvisioning:
		return delivered, fmt.Sprintf("order %s is delivered: the tenant runs plan %s", orderID, inst.Status.Plan)
	}
	return inProgress, pending
}
