package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// debugOrderTimeout bounds the Query Order check of a debug newInstance within the call budget.
const debugOrderTimeout = 3 * time.Second

// newInstance creates the instance of an order line if it does not exist and answers from it at
// once: 000000 when it is Ready, 000004 while it is provisioning (KooGallery then polls
// queryInstance), 000100 when it cannot be served, 000005 while too many instances wait for
// orders that do not resolve (refuseOverLimit). The name is derived from the order line, so
// retries and concurrent duplicates meet at the API server: one create wins, the others get
// AlreadyExists, read the winner and answer with its instance ID.
func (s *Server) newInstance(ctx context.Context, c *call, req *koogallery.NewInstanceRequest) any {
	if c.test {
		return s.debugNewInstance(ctx, req)
	}
	if r, ok := checkOrderFields(req.OrderID, req.OrderLineID); !ok {
		return r
	}
	if !instanceIDPattern.MatchString(req.BusinessID) {
		return reply(koogallery.ResultInvalidParam, "businessId may only hold letters, digits and . _ : -")
	}
	calls, err := saasv1alpha1.EncodeCalls([]saasv1alpha1.Operation{{
		Time:             metav1.NewTime(c.now),
		Activity:         c.activity,
		OrderID:          req.OrderID,
		Detail:           truncateRunes("created for order line "+req.OrderLineID, 256),
		RequestTimestamp: c.ts,
		// What a new instance is answered: provisioning, poll queryInstance.
		Result: koogallery.ResultProcessing,
	}})
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "encoding the creating call")
		return internalError()
	}
	inst := &saasv1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{
			Name:   InstanceName(req.OrderLineID),
			Labels: map[string]string{LabelInstanceIDHash: InstanceIDHash(req.BusinessID)},
			// The call goes into status.history through the reconciler's first status write.
			Annotations: map[string]string{saasv1alpha1.AnnotationCalls: calls},
			// Set now rather than by the reconciler's first pass: one write less per instance.
			Finalizers: []string{saasv1alpha1.FinalizerRelease},
		},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{
			InstanceID: req.BusinessID,
			Order:      saasv1alpha1.OrderReference{OrderID: req.OrderID, OrderLineID: req.OrderLineID, TestFlag: req.IsTest()},
			State:      saasv1alpha1.StateActive,
		},
	}
	log := ctrl.LoggerFrom(ctx).WithValues("marketplaceInstance", inst.Name)
	if r, refused := s.refuseOverLimit(ctx, inst.Name, req); refused {
		return r
	}
	err = s.client.Create(ctx, inst)
	switch {
	case err == nil:
		log.Info("created marketplace instance")
		return createReply(inst)
	case apierrors.IsAlreadyExists(err):
		return s.existingInstance(ctx, inst.Name, req)
	case apierrors.IsInvalid(err):
		return reply(koogallery.ResultInvalidParam, "the order cannot be stored as an instance: "+truncateRunes(statusMessage(err), 200))
	}
	log.Error(err, "creating marketplace instance")
	return internalError()
}

// refuseOverLimit refuses to create one more instance while Options.MaxUnresolvedInstances wait
// for orders Query Order does not resolve: anyone holding the basic key could otherwise grow etcd
// without bound with orders that never resolve. The answer is 000005, which KooGallery retries
// for hours: a real purchase goes through once the backlog is cleared. A retry for an instance
// that exists already is answered from it. Everything is read from the cache, and the count stops
// at the limit, so a refusal costs no API server round trip and a bounded amount of work.
func (s *Server) refuseOverLimit(ctx context.Context, name string, req *koogallery.NewInstanceRequest) (any, bool) {
	log := ctrl.LoggerFrom(ctx).WithValues("marketplaceInstance", name)
	n, full, err := s.unresolvedLimitReached(ctx)
	switch {
	case err != nil:
		log.Error(err, "counting instances with unresolved orders")
		return internalError(), true
	case !full:
		return nil, false
	}
	existing := &saasv1alpha1.MarketplaceInstance{}
	if err := s.client.Get(ctx, client.ObjectKey{Name: name}, existing); err == nil {
		return s.existingInstance(ctx, name, req), true
	}
	unresolvedRefusals.Inc()
	log.Info("refusing a new instance: too many instances wait for orders Query Order does not resolve",
		"orderId", req.OrderID, "unresolved", n, "limit", s.opts.MaxUnresolvedInstances)
	return reply(koogallery.ResultInternalError, "too many orders are waiting to be resolved; retry later"), true
}

func (s *Server) existingInstance(ctx context.Context, name string, req *koogallery.NewInstanceRequest) any {
	inst, err := s.getByName(ctx, name)
	switch {
	case err != nil:
		ctrl.LoggerFrom(ctx).Error(err, "reading the existing marketplace instance", "marketplaceInstance", name)
		return internalError()
	case inst == nil:
		// Deleted between our create and our read: a retry creates it afresh.
		return internalError()
	case inst.Spec.Order.OrderID != req.OrderID || inst.Spec.Order.OrderLineID != req.OrderLineID:
		return reply(koogallery.ResultNoResource, "another order's instance already uses the name derived from this order line")
	}
	return createReply(inst)
}

// createReply answers newInstance from the instance's status.
func createReply(inst *saasv1alpha1.MarketplaceInstance) koogallery.NewInstanceReply {
	r := koogallery.NewInstanceReply{InstanceID: inst.Spec.InstanceID}
	switch st := stateOf(inst); st.kind {
	case stateReady, stateDebugSettled:
		r.Reply = success("instance is ready")
	case stateUnservable:
		r.Reply = reply(koogallery.ResultNoResource, st.msg)
	case stateReleased:
		r.Reply = reply(koogallery.ResultNoResource, "the instance of this order line has been released")
	default:
		r.Reply = reply(koogallery.ResultProcessing, "instance is being provisioned")
	}
	return r
}

// debugNewInstance answers a debug create without creating anything: the order must exist in
// Query Order (KooGallery's MOCK* orders do), and the instance ID is derived from the order line
// so that the saved debug case gets the same answer every day.
func (s *Server) debugNewInstance(ctx context.Context, req *koogallery.NewInstanceRequest) any {
	if s.orders != nil {
		qctx, cancel := context.WithTimeout(ctx, debugOrderTimeout)
		defer cancel()
		_, err := s.orders.QueryOrder(qctx, req.OrderID, req.OrderLineID)
		switch {
		case openapi.IsNotFound(err) || openapi.IsInvalidInput(err):
			return reply(koogallery.ResultInvalidParam, "debug call: Query Order does not know this order line")
		case err != nil:
			ctrl.LoggerFrom(ctx).Error(err, "querying the order of a debug call")
			return internalError()
		}
	}
	return koogallery.NewInstanceReply{
		Reply:      success("debug call verified; no tenant is created for debug calls"),
		InstanceID: debugInstanceID(req.OrderID, req.OrderLineID),
	}
}

func checkOrderFields(orderID, orderLineID string) (koogallery.Reply, bool) {
	if !orderIDPattern.MatchString(orderID) {
		return reply(koogallery.ResultInvalidParam, "orderId may only hold letters, digits and . _ -"), false
	}
	if orderLineID != "" && !orderIDPattern.MatchString(orderLineID) {
		return reply(koogallery.ResultInvalidParam, "orderLineId may only hold letters, digits and . _ -"), false
	}
	return koogallery.Reply{}, true
}

// statusMessage is the API server's message for a rejected object (which field and why); it
// names no secret, since instances hold none.
func statusMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Message
	}
	return "invalid"
}

// stateKind is what KooGallery can be told about an instance.
type stateKind int

const (
	stateProvisioning stateKind = iota
	stateReady
	// stateDebugSettled: a debug-order instance the reconciler resolved and, by design, never
	// provisions; it is as done as it will get.
	stateDebugSettled
	// stateUnservable: no plan serves the order; a platform change is needed.
	stateUnservable
	// stateInactive: frozen, by spec or by expiry.
	stateInactive
	stateReleased
)

type instanceState struct {
	kind stateKind
	msg  string
}

// unservableReasons are the OrderResolved reasons that need a plan change, not time.
var unservableReasons = map[string]bool{
	saasv1alpha1.ReasonUnknownSKU:    true,
	saasv1alpha1.ReasonAmbiguousPlan: true,
	saasv1alpha1.ReasonPlanNotFound:  true,
}

// stateOf reads the instance's conditions (never status.phase, which is for humans).
func stateOf(inst *saasv1alpha1.MarketplaceInstance) instanceState {
	conds := inst.Status.Conditions
	order := meta.FindStatusCondition(conds, saasv1alpha1.ConditionOrderResolved)
	prov := meta.FindStatusCondition(conds, saasv1alpha1.ConditionProvisioned)
	switch {
	case !inst.DeletionTimestamp.IsZero() || meta.IsStatusConditionTrue(conds, saasv1alpha1.ConditionReleased):
		return instanceState{kind: stateReleased}
	case inst.Spec.State == saasv1alpha1.StateFrozen:
		// Checked before Ready: a freeze we accepted holds even before the reconciler reports it.
		return instanceState{kind: stateInactive}
	case meta.IsStatusConditionTrue(conds, saasv1alpha1.ConditionReady) && inst.Status.AppInfo != nil:
		return instanceState{kind: stateReady}
	case order != nil && order.Status == metav1.ConditionFalse && unservableReasons[order.Reason]:
		return instanceState{kind: stateUnservable, msg: fmt.Sprintf("the order cannot be served (%s): %s", order.Reason, truncateRunes(order.Message, 180))}
	case inst.Spec.Order.TestFlag && prov != nil && prov.Reason == saasv1alpha1.ReasonDebugOrder:
		return instanceState{kind: stateDebugSettled}
	case meta.IsStatusConditionTrue(conds, saasv1alpha1.ConditionFrozen):
		return instanceState{kind: stateInactive}
	}
	return instanceState{kind: stateProvisioning}
}
