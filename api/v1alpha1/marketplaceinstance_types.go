package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InstanceState is the desired state of a tenant.
// +kubebuilder:validation:Enum=Active;Frozen
type InstanceState string

const (
	// StateActive runs the tenant workload.
	StateActive InstanceState = "Active"
	// StateFrozen scales the tenant to zero and blocks its traffic, keeping
	// every byte of data.
	StateFrozen InstanceState = "Frozen"
)

// OrderReference names the KooGallery order that created an instance.
type OrderReference struct {
	// orderId is the KooGallery order ID.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	OrderID string `json:"orderId"`

	// orderLineId is the KooGallery order line ID (for example
	// CS2211181819B4LVS-000001).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	OrderLineID string `json:"orderLineId"`

	// testFlag marks a KooGallery debug order (testFlag=1). Debug orders are
	// resolved and answered but never provisioned.
	// +optional
	TestFlag bool `json:"testFlag,omitempty"`
}

// ChangeOrder names a later KooGallery order that changed what the buyer
// bought: an upgrade, a renewal with a specification change, or a trial
// converted to a paid order.
type ChangeOrder struct {
	// orderId is the KooGallery order ID of the change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	OrderID string `json:"orderId"`

	// orderLineId is the KooGallery order line ID of the change.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]*$`
	OrderLineID string `json:"orderLineId,omitempty"`
}

// ReleasePolicy says what happens between the release of an instance and
// the deletion of its tenant.
type ReleasePolicy struct {
	// retentionPeriod keeps the released tenant, frozen, for this long before
	// its namespace is deleted (for example "72h"), so data can still be
	// recovered. Zero deletes at once.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	RetentionPeriod *metav1.Duration `json:"retentionPeriod,omitempty"`

	// skipBackup releases without running the plan's backup Job.
	// +optional
	SkipBackup bool `json:"skipBackup,omitempty"`
}

// MarketplaceInstanceSpec is one buyer's purchase: the order and what the
// tenant should be.
// +kubebuilder:validation:XValidation:rule="!has(self.currentOrder) || self.currentOrder.orderId != self.order.orderId || (has(self.currentOrder.orderLineId) && self.currentOrder.orderLineId != self.order.orderLineId)",message="currentOrder must name a later order than order; leave it unset to use order"
type MarketplaceInstanceSpec struct {
	// instanceId is the instance ID reported to KooGallery (the first
	// newInstance call's businessId). It cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._:-]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="instanceId is immutable"
	InstanceID string `json:"instanceId"`

	// order is the KooGallery order that created the instance. It cannot
	// change; later orders (upgrades, renewals with a change) go to
	// currentOrder.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="order is immutable; put a later order in currentOrder"
	Order OrderReference `json:"order"`

	// currentOrder is the latest order that changed what the buyer bought.
	// When set, its SKU, not order's, selects the plan.
	// +optional
	CurrentOrder *ChangeOrder `json:"currentOrder,omitempty"`

	// plan pins the MarketplacePlan by name. Empty: the plan is the one whose
	// skus contain the order's SKU.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Plan string `json:"plan,omitempty"`

	// expireTime is when the subscription ends (RFC 3339, UTC). Past it, plus
	// the operator's grace period, the instance freezes itself even if no
	// freeze callback arrived.
	// +optional
	ExpireTime *metav1.Time `json:"expireTime,omitempty"`

	// state is the desired state: Active runs the tenant, Frozen scales it to
	// zero and blocks its traffic while keeping its data.
	// +optional
	// +kubebuilder:default=Active
	State InstanceState `json:"state,omitempty"`

	// release is what happens when the instance is released (deleted).
	// +optional
	Release ReleasePolicy `json:"release,omitempty"`

	// paused stops every change to the tenant until it is set back to false.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// ResolvedOrder is what Query Order said about the order the instance
// runs.
type ResolvedOrder struct {
	// orderId is the order that was resolved.
	// +required
	// +kubebuilder:validation:MaxLength=64
	OrderID string `json:"orderId"`
	// orderLineId is the order line that was resolved.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	OrderLineID string `json:"orderLineId,omitempty"`
	// orderType is KooGallery's order type (NEW, TRIAL, TRIAL_TO_FORMAL,
	// RENEW, CHANGE, UNSUBSCRIBE).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	OrderType string `json:"orderType,omitempty"`
	// productId is the product of the order line.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ProductID string `json:"productId,omitempty"`
	// skuCode is the SKU of the order line.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SKUCode string `json:"skuCode,omitempty"`
	// chargingMode is ON_DEMAND, ONE_TIME, PERIOD or ON_DEMAND_PKG.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	ChargingMode string `json:"chargingMode,omitempty"`
	// periodType is the unit of the subscription period (year, month, day...).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	PeriodType string `json:"periodType,omitempty"`
	// periodNum is the number of periods bought.
	// +optional
	PeriodNum int32 `json:"periodNum,omitempty"`
	// expireTime is the order line's expiry as KooGallery reported it.
	// +optional
	ExpireTime *metav1.Time `json:"expireTime,omitempty"`
	// linearValue is the quantity bought (seats, users), from the order line's
	// product; 0 when the SKU has no quantity attribute.
	// +optional
	// +kubebuilder:validation:Minimum=0
	LinearValue int64 `json:"linearValue,omitempty"`
	// extendParams are the parameters the buyer filled in (the order's and
	// the order line's, the line's winning on a name both carry), for
	// templates (.Order.Params) and the tenant's entitlement.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	ExtendParams []ExtendParam `json:"extendParams,omitempty"`
	// checkedTime is when Query Order last answered for this order; it is
	// asked again after the re-check interval.
	// +optional
	CheckedTime *metav1.Time `json:"checkedTime,omitempty"`
}

// ExtendParam is one buyer-filled order parameter.
type ExtendParam struct {
	// name of the parameter.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Name string `json:"name"`
	// value the buyer gave.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value,omitempty"`
}

// OrderQueryStatus keeps the Query Order backoff, so a broken order cannot
// hammer KooGallery across restarts.
type OrderQueryStatus struct {
	// failures counts consecutive failed queries of the current order.
	// +optional
	Failures int32 `json:"failures,omitempty"`
	// nextAttemptTime is the earliest time the next query may be sent.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`
	// lastError is why the last query failed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
}

// AppInfo is what the buyer sees of the tenant in KooGallery. Credentials
// are not here: they stay in the Secret named by credentialsSecretRef.
type AppInfo struct {
	// frontEndUrl is the site URL the buyer uses.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	FrontEndURL string `json:"frontEndUrl,omitempty"`
	// adminUrl is the admin console URL.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	AdminURL string `json:"adminUrl,omitempty"`
	// memo is the plan's instructions for the buyer, rendered.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Memo string `json:"memo,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// namespace of the Secret.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
}

// Operation is one marketplace call applied to the instance.
type Operation struct {
	// time is when the call was applied.
	// +required
	Time metav1.Time `json:"time"`
	// activity is the KooGallery activity (newInstance,
	// updateInstanceStatus...).
	// +required
	// +kubebuilder:validation:MaxLength=32
	Activity string `json:"activity"`
	// orderId is the order the call carried, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	OrderID string `json:"orderId,omitempty"`
	// detail is what the call asked for (for example FREEZE, RENEWAL, or the
	// new SKU).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Detail string `json:"detail,omitempty"`
	// requestTimestamp is the call's signed timestamp in Unix milliseconds; it
	// orders calls that arrive out of order.
	// +optional
	RequestTimestamp int64 `json:"requestTimestamp,omitempty"`
	// result is the result code answered to KooGallery.
	// +optional
	// +kubebuilder:validation:MaxLength=6
	Result string `json:"result,omitempty"`
}

// ResourceRef is one object the operator applied for the tenant, and what it remembers of it.
type ResourceRef struct {
	// apiVersion of the object.
	// +required
	// +kubebuilder:validation:MaxLength=128
	APIVersion string `json:"apiVersion"`
	// kind of the object.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Kind string `json:"kind"`
	// name of the object, in the tenant namespace.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// appliedHash identifies what the operator last applied to the object; an
	// object whose rendering still has this hash is not written again.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AppliedHash string `json:"appliedHash,omitempty"`
	// generation is the object's metadata.generation after that apply: a copy
	// of the object older than it does not show what was applied yet.
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// frozenReplicas is the replica count a frozen workload had, restored when
	// the tenant is unfrozen.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FrozenReplicas *int32 `json:"frozenReplicas,omitempty"`
}

// MaxHistory bounds status.history; the oldest entries are dropped first.
const MaxHistory = 20

// MarketplaceInstanceStatus is the observed state of a
// MarketplaceInstance.
type MarketplaceInstanceStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready summarises OrderResolved, Provisioned, Frozen,
	// Degraded and the rest.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// phase is a one-word summary for humans (Pending, Provisioning, Ready,
	// Upgrading, Frozen, Releasing, Failed, Paused). Never read it back for
	// decisions: use conditions.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Phase string `json:"phase,omitempty"`

	// order is the resolved order the tenant runs.
	// +optional
	Order *ResolvedOrder `json:"order,omitempty"`

	// orderQuery is the Query Order backoff while the order cannot be
	// resolved.
	// +optional
	OrderQuery *OrderQueryStatus `json:"orderQuery,omitempty"`

	// expireTime is when the buyer's paid period ends, as the operator enforces
	// it: spec.expireTime once a refreshInstance set it, else the order's own
	// expireTime from Query Order. Past it plus the freeze grace, the tenant
	// freezes itself.
	// +optional
	ExpireTime *metav1.Time `json:"expireTime,omitempty"`

	// plan is the MarketplacePlan the tenant was last rendered from.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Plan string `json:"plan,omitempty"`

	// namespace is the tenant namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// resources are the objects the operator applied in the tenant namespace
	// (its quota and network policies, and the plan's workload) and the
	// namespace itself, sorted, with what the operator remembers of each.
	// Objects that leave the plan are pruned by comparing against this list.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=96
	Resources []ResourceRef `json:"resources,omitempty"`

	// appInfo is the buyer-facing URLs, set once the tenant is ready.
	// +optional
	AppInfo *AppInfo `json:"appInfo,omitempty"`

	// credentialsSecretRef names the Secret holding the buyer's initial admin
	// account.
	// +optional
	CredentialsSecretRef *SecretReference `json:"credentialsSecretRef,omitempty"`

	// history is the most recent marketplace calls applied, oldest first, at
	// most 20.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	History []Operation `json:"history,omitempty"`

	// usage is the pay-per-use ledger (plans with spec.metering), written by the usage
	// controller alone.
	// +optional
	Usage *UsageStatus `json:"usage,omitempty"`
}

// MarketplaceInstance is one KooGallery purchase and the isolated tenant
// it runs. The marketplace webhook writes it; so may an SRE. The operator
// converges the tenant to it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mpi,categories=marketplace
// +kubebuilder:printcolumn:name="Instance ID",type=string,JSONPath=`.spec.instanceId`
// +kubebuilder:printcolumn:name="Plan",type=string,JSONPath=`.status.plan`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expireTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Order",type=string,JSONPath=`.spec.order.orderId`,priority=1
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.namespace`,priority=1
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (lower-case letters, digits and '-', at most 63 characters): the tenant namespace is derived from it"
type MarketplaceInstance struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the purchase and the desired state of the tenant.
	// +required
	Spec MarketplaceInstanceSpec `json:"spec"`

	// status is the observed state of the tenant.
	// +optional
	Status MarketplaceInstanceStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MarketplaceInstanceList is a list of MarketplaceInstance.
type MarketplaceInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MarketplaceInstance `json:"items"`
}
