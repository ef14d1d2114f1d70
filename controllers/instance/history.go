package instance

import (
	"strconv"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// recordCreation puts the newInstance call that created the instance (AnnotationCreatedByCall)
// at the head of its history, in the first pass's status write: the webhook answers that call
// after the create alone. Only a pass over an instance never reconciled records it, once: a pass
// retried after a failed write finds no entry and tries again, a later one finds it there. The
// status write that carries it is locked (patchStatus), because the webhook appends to the same
// list.
func recordCreation(s *scope) {
	ts, err := strconv.ParseInt(s.inst.Annotations[saasv1alpha1.AnnotationCreatedByCall], 10, 64)
	if err != nil || s.orig.Status.ObservedGeneration != 0 || len(s.inst.Status.History) >= saasv1alpha1.MaxHistory {
		return
	}
	for _, h := range s.inst.Status.History {
		if h.Activity == koogallery.ActivityNewInstance && h.RequestTimestamp == ts {
			return
		}
	}
	order := s.inst.Spec.Order
	op := saasv1alpha1.Operation{
		Time:             s.inst.CreationTimestamp,
		Activity:         koogallery.ActivityNewInstance,
		OrderID:          order.OrderID,
		Detail:           "created for order line " + order.OrderLineID,
		RequestTimestamp: ts,
		// What a new instance is answered: provisioning, poll queryInstance.
		Result: koogallery.ResultProcessing,
	}
	s.historyRead = s.inst.Status.History
	s.inst.Status.History = append([]saasv1alpha1.Operation{op}, s.inst.Status.History...)
	s.recordedCreation = true
}
