package webhook

import (
	"context"
	"errors"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// target finds the instance a lifecycle call names. It answers the call itself (non-nil reply)
// when there is nothing to change: 000003 for an unknown instance, and 000000 for a debug call,
// which is verified and answered but never changes a real instance (debug instances have no
// object at all).
func (s *Server) target(ctx context.Context, c *call, id string) (*saasv1alpha1.MarketplaceInstance, any) {
	if c.test && isDebugInstanceID(id) {
		return nil, success("debug call verified; debug instances have no tenant to change")
	}
	inst, err := s.findInstance(ctx, id)
	switch {
	case err != nil:
		ctrl.LoggerFrom(ctx).Error(err, "looking up instance")
		return nil, internalError()
	case inst == nil:
		return nil, notFound()
	case c.test:
		return nil, success("debug call verified; a debug call never changes a real instance")
	}
	return inst, nil
}

// change applies a mutation to the instance a call names and answers it. A released instance
// acknowledges the call and records it as ignored: Released is final.
func (s *Server) change(ctx context.Context, c *call, id, orderID string, mutate mutation) any {
	_, _, r := s.changeInstance(ctx, c, id, orderID, mutate)
	return r
}

// changeInstance is change that also returns the instance as written and the call's outcome when
// it was applied to a live instance (nil otherwise).
func (s *Server) changeInstance(ctx context.Context, c *call, id, orderID string, mutate mutation) (*saasv1alpha1.MarketplaceInstance, outcome, any) {
	inst, r := s.target(ctx, c, id)
	if r != nil {
		return nil, 0, r
	}
	op := saasv1alpha1.Operation{OrderID: orderID}
	if !inst.DeletionTimestamp.IsZero() {
		_, detail := mutate(inst.DeepCopy())
		op.Detail = detail + ignoredMark + ": the instance is being released)"
		if err := s.record(ctx, c, inst, op); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "recording an ignored call", "marketplaceInstance", inst.Name)
		}
		return nil, 0, success("the instance is being released; nothing changed")
	}
	written, out, err := s.apply(ctx, c, inst, op, mutate)
	switch {
	case errors.Is(err, errGone):
		return nil, 0, notFound()
	case err != nil:
		ctrl.LoggerFrom(ctx).Error(err, "applying a marketplace call", "marketplaceInstance", inst.Name)
		return nil, 0, internalError()
	}
	return written, out, success("success")
}

// refreshInstance applies a renewal, a trial converted to paid, a cancelled renewal period or a
// renewal with a change: spec.expireTime moves to the call's expireTime (later or earlier), and
// a call that changes what was bought (TRIAL_TO_FORMAL, RENEWAL_CHANGE, a new productId) points
// spec.currentOrder at its order so the reconciler resolves the plan again.
func (s *Server) refreshInstance(ctx context.Context, c *call, req *koogallery.RefreshInstanceRequest) any {
	if r, ok := checkOrderFields(req.OrderID, req.OrderLineID); !ok {
		return r
	}
	expire, err := req.ExpireAt()
	if err != nil {
		return koogallery.NewReply(err)
	}
	return s.orderChange(ctx, c, req.InstanceID, req.OrderID, refreshMutation(req, expire, c.ts, c.now))
}

func refreshMutation(req *koogallery.RefreshInstanceRequest, expire time.Time, ts int64, now time.Time) mutation {
	return func(inst *saasv1alpha1.MarketplaceInstance) (outcome, string) {
		detail := refreshDetail(req.Scene, expire)
		if appliedBefore(inst, sameRefresh(req, expire)) {
			return repeated, detail
		}
		if !newer(inst, aspectExpiry, ts) {
			return stale, detail
		}
		old := inst.Spec.ExpireTime
		t := metav1.NewTime(expire.UTC())
		inst.Spec.ExpireTime = &t
		markApplied(inst, aspectExpiry, ts)
		if changesOrder(req, inst) && newer(inst, aspectOrder, ts) {
			setCurrentOrder(inst, req.OrderID, req.OrderLineID)
			markApplied(inst, aspectOrder, ts)
			detail += ", order " + req.OrderID
		}
		if liftsExpiryFreeze(inst, old, expire, now) && newer(inst, aspectState, ts) {
			inst.Spec.State = saasv1alpha1.StateActive
			markApplied(inst, aspectState, ts)
			detail += ", unfrozen"
		}
		return applied, detail
	}
}

// sameRefresh matches the records of the same refresh: the same order, scene and expiry (a
// cancelled renewal period may carry the renewal's order; a retry carries the expiry it had).
func sameRefresh(req *koogallery.RefreshInstanceRequest, expire time.Time) func(saasv1alpha1.Operation) bool {
	prefix := refreshDetail(req.Scene, expire)
	return func(op saasv1alpha1.Operation) bool {
		return op.Activity == koogallery.ActivityRefreshInstance && op.OrderID == req.OrderID &&
			(op.Detail == prefix || strings.HasPrefix(op.Detail, prefix+","))
	}
}

// refreshDetail opens the history detail of a refresh.
func refreshDetail(scene string, expire time.Time) string {
	return scene + ": expires " + expire.UTC().Format(time.RFC3339)
}

// changesOrder reports a refresh that changes what the buyer bought.
func changesOrder(req *koogallery.RefreshInstanceRequest, inst *saasv1alpha1.MarketplaceInstance) bool {
	switch req.Scene {
	case koogallery.SceneTrialToFormal, koogallery.SceneRenewalChange:
		return true
	case koogallery.SceneUnsubscribeRenewalPeriod:
		return false
	}
	resolved := inst.Status.Order
	return req.ProductID != "" && (resolved == nil || resolved.ProductID != req.ProductID)
}

// liftsExpiryFreeze reports a renewal that must let a frozen instance run again: it was frozen
// after its subscription ran out (the old expiry has passed) and the new expiry is in the future.
// An instance frozen before its expiry was frozen for another reason (a violation), which only
// an UNFREEZE lifts.
func liftsExpiryFreeze(inst *saasv1alpha1.MarketplaceInstance, old *metav1.Time, expire, now time.Time) bool {
	return inst.Spec.State == saasv1alpha1.StateFrozen && old != nil && !old.After(now) && expire.After(now)
}

// setCurrentOrder points the instance at a later order. The purchase order itself clears
// currentOrder (the CRD refuses a currentOrder equal to order).
func setCurrentOrder(inst *saasv1alpha1.MarketplaceInstance, orderID, lineID string) {
	o := inst.Spec.Order
	if orderID == o.OrderID && (lineID == "" || lineID == o.OrderLineID) {
		inst.Spec.CurrentOrder = nil
		return
	}
	inst.Spec.CurrentOrder = &saasv1alpha1.ChangeOrder{OrderID: orderID, OrderLineID: lineID}
}

// updateInstanceStatus freezes (spec.state Frozen) or unfreezes (Active) the tenant.
func (s *Server) updateInstanceStatus(ctx context.Context, c *call, req *koogallery.UpdateInstanceStatusRequest) any {
	return s.change(ctx, c, req.InstanceID, "", statusMutation(req.Status, c.ts))
}

func statusMutation(status string, ts int64) mutation {
	want := saasv1alpha1.StateActive
	if status == koogallery.StatusFreeze {
		want = saasv1alpha1.StateFrozen
	}
	return func(inst *saasv1alpha1.MarketplaceInstance) (outcome, string) {
		if !newer(inst, aspectState, ts) {
			return stale, status
		}
		inst.Spec.State = want
		markApplied(inst, aspectState, ts)
		return applied, status
	}
}

// upgradeInstance points spec.currentOrder at the upgrade order; the reconciler resolves its SKU
// and moves the tenant to the plan serving it. The same order again is not re-applied; it is
// answered with how far the upgrade got (orderChange).
func (s *Server) upgradeInstance(ctx context.Context, c *call, req *koogallery.UpgradeInstanceRequest) any {
	if r, ok := checkOrderFields(req.OrderID, req.OrderLineID); !ok {
		return r
	}
	return s.orderChange(ctx, c, req.InstanceID, req.OrderID, upgradeMutation(req.OrderID, req.OrderLineID, c.ts))
}

func upgradeMutation(orderID, lineID string, ts int64) mutation {
	return func(inst *saasv1alpha1.MarketplaceInstance) (outcome, string) {
		detail := "upgrade to order " + orderID
		switch {
		case currentOrderID(inst) == orderID:
			return repeated, detail
		case appliedBefore(inst, ofOrder(orderID)):
			// Replaced by a later order since: a late retry.
			return stale, detail
		}
		if !newer(inst, aspectOrder, ts) {
			return stale, detail
		}
		setCurrentOrder(inst, orderID, lineID)
		markApplied(inst, aspectOrder, ts)
		return applied, detail
	}
}

func currentOrderID(inst *saasv1alpha1.MarketplaceInstance) string {
	if co := inst.Spec.CurrentOrder; co != nil {
		return co.OrderID
	}
	return inst.Spec.Order.OrderID
}

// releaseInstance deletes the instance; its finalizer then releases the tenant (retention,
// backup, namespace deletion). Releasing an instance that is already being released, or that
// does not exist, answers 000000: the spec requires a repeated release to succeed.
func (s *Server) releaseInstance(ctx context.Context, c *call, req *koogallery.ReleaseInstanceRequest) any {
	inst, r := s.target(ctx, c, req.InstanceID)
	if r != nil {
		if resultCode(r) == koogallery.ResultInstanceNotFound {
			return success("the instance does not exist or was already released")
		}
		return r
	}
	if !inst.DeletionTimestamp.IsZero() {
		return success("the instance is already being released")
	}
	detail := "release"
	if req.OrderID != "" {
		detail = "release on unsubscription"
	}
	if err := s.record(ctx, c, inst, saasv1alpha1.Operation{OrderID: req.OrderID, Detail: detail}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "recording the release", "marketplaceInstance", inst.Name)
		return internalError()
	}
	err := s.client.Delete(ctx, inst, client.Preconditions{UID: &inst.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		ctrl.LoggerFrom(ctx).Error(err, "deleting instance", "marketplaceInstance", inst.Name)
		return internalError()
	}
	ctrl.LoggerFrom(ctx).Info("released marketplace instance", "marketplaceInstance", inst.Name)
	return success("release started")
}
