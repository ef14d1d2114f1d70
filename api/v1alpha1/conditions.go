package v1alpha1

// Condition types of a MarketplaceInstance. Ready summarises the others.
const (
	// ConditionReady is True when the tenant serves the buyer: the order is resolved, the
	// workload is provisioned and available, and the instance is neither frozen nor released.
	ConditionReady = "Ready"
	// ConditionOrderResolved is True when Query Order answered for the current order and a plan
	// serves its SKU.
	ConditionOrderResolved = "OrderResolved"
	// ConditionProvisioned is True when every tenant object of the applied plan exists and the
	// workload reports ready.
	ConditionProvisioned = "Provisioned"
	// ConditionFrozen is True when the tenant is scaled to zero and its traffic blocked.
	ConditionFrozen = "Frozen"
	// ConditionDegraded is True when a step failed in a way that needs attention.
	ConditionDegraded = "Degraded"
	// ConditionReleased is True once release has started; it never goes back.
	ConditionReleased = "Released"
	// ConditionPaused is True while spec.paused or the pause annotation stops all changes.
	ConditionPaused = "Paused"
)

// Condition reasons. They are part of the API: alerts and scripts match on them.
const (
	ReasonResolved         = "Resolved"
	ReasonQueryFailed      = "OrderQueryFailed"
	ReasonOrderNotFound    = "OrderNotFound"
	ReasonUnknownSKU       = "UnknownSKU"
	ReasonAmbiguousPlan    = "AmbiguousPlan"
	ReasonPlanNotFound     = "PlanNotFound"
	ReasonDebugOrder       = "DebugOrder"
	ReasonProvisioning     = "Provisioning"
	ReasonUpgrading        = "Upgrading"
	ReasonAvailable        = "Available"
	ReasonRenderFailed     = "RenderFailed"
	ReasonApplyFailed      = "ApplyFailed"
	ReasonConflict         = "Conflict"
	ReasonDowngradeRefused = "DowngradeRefused"
	ReasonFrozenByOrder    = "FrozenByOrder"
	ReasonExpired          = "Expired"
	// ReasonReleaseOverdue: expired longer ago than KooGallery's longest freeze period (15
	// days), so a releaseInstance should have arrived and did not.
	ReasonReleaseOverdue  = "ReleaseOverdue"
	ReasonActive          = "Active"
	ReasonRetaining       = "Retaining"
	ReasonBackingUp       = "BackingUp"
	ReasonBackupFailed    = "BackupFailed"
	ReasonDeleting        = "Deleting"
	ReasonPaused          = "Paused"
	ReasonNotPaused       = "NotPaused"
	ReasonTemplatesValid  = "TemplatesValid"
	ReasonInvalidTemplate = "InvalidTemplate"
)

// Labels, annotations and the finalizer the operator puts on objects.
const (
	// FinalizerRelease holds a MarketplaceInstance until its tenant is gone.
	FinalizerRelease = "saas.marketplace.dev/release"
	// LabelInstance names the MarketplaceInstance an object was made for. The manager's cache
	// holds only objects that carry it. It does not decide ownership: the object's controller
	// reference to the instance does.
	LabelInstance = "saas.marketplace.dev/instance"
	// LabelPlan names the MarketplacePlan an object was rendered from.
	LabelPlan = "saas.marketplace.dev/plan"
	// LabelTemplate names the plan manifest an object was rendered from, for people: pruning
	// compares the rendered objects with status.resources.
	LabelTemplate = "saas.marketplace.dev/template"
	// AnnotationPaused, set to "true", pauses an instance like spec.paused.
	AnnotationPaused = "saas.marketplace.dev/paused"
	// AnnotationReconcileRequest forces a reconcile whenever its value changes (for example
	// `kubectl annotate mpi NAME saas.marketplace.dev/reconcile-request="$(date +%s)" --overwrite`).
	AnnotationReconcileRequest = "saas.marketplace.dev/reconcile-request"
	// AnnotationFrozenReplicas is where builds before the status inventory kept, on a frozen
	// workload, the replica count to restore; it is read only to unfreeze a workload one of them
	// froze (status.resources[].frozenReplicas holds the count now).
	AnnotationFrozenReplicas = "saas.marketplace.dev/frozen-replicas"
	// AnnotationCalls holds the marketplace calls the endpoint applied that status.history does
	// not show yet, as a JSON list of Operations (see EncodeCalls). The endpoint writes it, in
	// the same write as the change a call makes; the reconciler copies its entries into
	// status.history. Status has one writer, and a call costs one write.
	AnnotationCalls = "saas.marketplace.dev/calls"
)
