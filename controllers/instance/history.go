package instance

import (
	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// mergeCalls copies into status.history the marketplace calls the endpoint recorded on the
// instance (AnnotationCalls) that it does not hold yet.
func mergeCalls(inst *saasv1alpha1.MarketplaceInstance) {
	if h, added := saasv1alpha1.MergeCalls(inst.Status.History, saasv1alpha1.PendingCalls(inst)); added {
		inst.Status.History = h
	}
}
