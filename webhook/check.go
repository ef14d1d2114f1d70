package webhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// changeInstanceCheck is a dry run: may the instance move to the target SKU? The target plan is
// the one serving productInfo's productId/skuCode, and the tenant's current usage (its
// ResourceQuota's status.used) must fit that plan's quota. The reconciler decides an upgrade with
// the same two functions (render.PlanForSKU, render.QuotaShortfall), so the answer matches what
// the upgrade would then do.
//
// A refusal answers 000100 ("no instance resource can be allocated"): KooGallery treats any
// code but 000000 as "change refused" and documents none for it; 000100 says what happened
// (the target cannot hold this tenant) without blaming the request (000002) or inviting retries
// (000005). resultMsg lists the shortfall.
func (s *Server) changeInstanceCheck(ctx context.Context, c *call, req *koogallery.ChangeInstanceCheckRequest) any {
	inst, r := s.target(ctx, c, req.InstanceID)
	if r != nil {
		return r
	}
	if !inst.DeletionTimestamp.IsZero() {
		return reply(koogallery.ResultNoResource, "the instance is being released")
	}
	plan, r := s.targetPlan(ctx, req.ProductInfo.ProductID, req.ProductInfo.SKUCode)
	if r != nil {
		return r
	}
	used, err := s.quotaUsed(ctx, inst)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "reading tenant quota", "marketplaceInstance", inst.Name)
		return internalError()
	}
	units := int64(1)
	if lv := req.ProductInfo.LinearValue; lv.Set && lv.Value > 0 {
		units = int64(lv.Value)
	}
	if short := render.QuotaShortfall(used, render.Quota(plan, units)); len(short) > 0 {
		msg := fmt.Sprintf("current usage does not fit plan %s: %s", plan.Name, strings.Join(short, "; "))
		return reply(koogallery.ResultNoResource, truncateRunes(msg, 255))
	}
	return success("the instance can move to plan " + plan.Name)
}

// targetPlan finds the one plan serving the SKU among the cached plans (a handful, written by
// the platform team), or answers the refusal.
func (s *Server) targetPlan(ctx context.Context, productID, skuCode string) (*saasv1alpha1.MarketplacePlan, any) {
	plans := &saasv1alpha1.MarketplacePlanList{}
	if err := s.client.List(ctx, plans); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing plans")
		return nil, internalError()
	}
	plan, serving := render.PlanForSKU(plans.Items, productID, skuCode)
	switch {
	case plan != nil:
		return plan, nil
	case len(serving) == 0:
		return nil, reply(koogallery.ResultNoResource, "no plan serves the target product and SKU")
	default:
		return nil, reply(koogallery.ResultNoResource, "several plans serve the target SKU: "+strings.Join(serving, ", "))
	}
}

// quotaUsed is the tenant's current usage; none (not provisioned yet) fits every plan. The quota
// is addressed by the namespace derived from the instance's name, never by status.namespace
// (whoever may patch the status could point it at another tenant's), and only a quota the
// instance owns counts.
func (s *Server) quotaUsed(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) (corev1.ResourceList, error) {
	q := &corev1.ResourceQuota{}
	// From the API server: the manager's cache holds no quota's usage.
	err := s.reader.Get(ctx, client.ObjectKey{Namespace: render.NamespaceName(inst.Name), Name: render.QuotaName}, q)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("getting quota: %w", err)
	case !render.OwnedBy(q, inst):
		return nil, nil
	}
	return q.Status.Used, nil
}

// orderNotify answers an order notification as the spec asks: it calls Query Order for the
// order, and records what it returned in the history of the instances the order belongs to (a
// renewal or change order of an existing instance). An order no instance knows yet (a new
// purchase, whose newInstance follows) is logged with what Query Order said. When Query Order
// fails or does not know the order, the notification is answered 000005: KooGallery calls again
// for 3 hours, by which time the order is visible.
func (s *Server) orderNotify(ctx context.Context, c *call, req *koogallery.OrderNotifyRequest) any {
	log := ctrl.LoggerFrom(ctx)
	if c.test {
		return success("debug call verified")
	}
	summary, r := s.queryNotifiedOrder(ctx, req)
	if r != nil {
		return r
	}
	list := &saasv1alpha1.MarketplaceInstanceList{}
	if err := s.client.List(ctx, list, client.MatchingFields{OrderIDIndex: req.OrderID}); err != nil {
		log.Error(err, "listing instances of a notified order")
		return internalError()
	}
	log.Info("order notification", "orderId", req.OrderID, "order", summary, "instances", len(list.Items))
	for i := range list.Items {
		op := saasv1alpha1.Operation{OrderID: req.OrderID, Detail: "order notification: " + summary}
		if err := s.record(ctx, c, &list.Items[i], op); err != nil {
			log.Error(err, "recording an order notification", "marketplaceInstance", list.Items[i].Name)
			return internalError()
		}
	}
	return success("success")
}

// queryNotifiedOrder calls Query Order for a notified order line and summarises it (type, line,
// charging, SKU, quantity, expiry; never the buyer), or answers the call when it cannot.
func (s *Server) queryNotifiedOrder(ctx context.Context, req *koogallery.OrderNotifyRequest) (string, any) {
	if s.orders == nil {
		return "Query Order is not configured", nil
	}
	order, err := s.orders.QueryOrder(ctx, req.OrderID, req.OrderLineID)
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("order notification: Query Order failed; KooGallery will notify again", "orderId", req.OrderID, "error", err.Error())
		return "", reply(koogallery.ResultInternalError, "Query Order failed for the notified order; notify again")
	}
	line, ok := order.Line(req.OrderLineID)
	if !ok {
		return "", reply(koogallery.ResultInternalError, "Query Order does not show order line "+truncateRunes(req.OrderLineID, 64)+" yet; notify again")
	}
	summary := fmt.Sprintf("%s, line %s, %s", order.OrderType, line.OrderLineID, line.ChargingMode)
	if p, ok := line.Product(); ok {
		summary += fmt.Sprintf(", SKU %s", p.SKUCode)
		if p.LinearValue > 0 {
			summary += fmt.Sprintf(" x%d", p.LinearValue)
		}
	}
	if !line.ExpireTime.IsZero() {
		summary += ", expires " + line.ExpireTime.UTC().Format(time.RFC3339)
	}
	return summary, nil
}
