package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeteringSource is what a pay-per-use tenant's usage is measured from.
// +kubebuilder:validation:Enum=RunningTime;AppReported
type MeteringSource string

const (
	// MeteringRunningTime bills the hours the tenant was Ready (provisioned, available, not
	// frozen, not released), as the operator observes them.
	MeteringRunningTime MeteringSource = "RunningTime"
	// MeteringAppReported bills a cumulative value the tenant's application writes to the
	// UsageConfigMap in its namespace.
	MeteringAppReported MeteringSource = "AppReported"
)

// The application's usage channel (MeteringAppReported).
const (
	// UsageConfigMap is the ConfigMap in the tenant namespace the application reports its
	// cumulative usage in.
	UsageConfigMap = "marketplace-usage"
	// UsageValueKey is the key of UsageConfigMap holding the cumulative usage, a non-negative
	// decimal with at most 4 decimals (more are cut off).
	UsageValueKey = "value"
	// UsageReporterRole is the Role (and RoleBinding) that lets the tenant's ServiceAccount get
	// and patch UsageConfigMap, and nothing else.
	UsageReporterRole = "marketplace-usage-reporter"
	// FinalizerUsage holds a pay-per-use MarketplaceInstance, and its UsageConfigMap, until the
	// final usage period is pushed.
	FinalizerUsage = "saas.marketplace.dev/usage"
	// MaxPendingUsage bounds status.usage.pending: the periods pushed in one call.
	MaxPendingUsage = 24
)

// MeteringSpec says how a pay-per-use plan's tenants are metered.
// +kubebuilder:validation:XValidation:rule="self.source != 'RunningTime' || self.unit == 'hour'",message="RunningTime is measured in hours: unit must be hour"
// +kubebuilder:validation:XValidation:rule="self.source == 'AppReported' || !has(self.serviceAccountName)",message="serviceAccountName is only for AppReported"
type MeteringSpec struct {
	// unit is the billing unit of the product's pay-per-use SKU in KooGallery (hour, GB,
	// request...). Pushed values are in it. RunningTime requires hour.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_.-]*$`
	Unit string `json:"unit"`

	// source is what usage is measured from: RunningTime (hours the tenant was Ready, measured
	// by the operator) or AppReported (a cumulative value the application writes to the
	// marketplace-usage ConfigMap, key value, in its namespace).
	// +required
	Source MeteringSource `json:"source"`

	// dashboardUrl is where the buyer sees their usage in detail, shown by KooGallery with the
	// usage (queryInstance usageInfo).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://`
	DashboardURL string `json:"dashboardUrl,omitempty"`

	// serviceAccountName is the tenant ServiceAccount allowed to report usage (AppReported
	// only). Default: the namespace's default ServiceAccount.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// UsagePeriod is one metered period, a usage record of KooGallery's usage push.
type UsagePeriod struct {
	// meteringSn is the record's ID, derived from the instance ID and endTime: KooGallery
	// de-duplicates on it, so a period sent twice is billed once.
	// +required
	// +kubebuilder:validation:MaxLength=64
	MeteringSN string `json:"meteringSn"`
	// beginTime is where the period starts (the previous period's end).
	// +required
	BeginTime metav1.Time `json:"beginTime"`
	// endTime is where the period ends.
	// +required
	EndTime metav1.Time `json:"endTime"`
	// value is the usage in the period, in the plan's unit (at most 4 decimals).
	// +required
	// +kubebuilder:validation:MaxLength=20
	Value string `json:"value"`
	// cumulative is the cumulative usage at endTime.
	// +required
	// +kubebuilder:validation:MaxLength=20
	Cumulative string `json:"cumulative"`
}

// UsageStatus is the ledger of a pay-per-use instance: what was measured, what KooGallery was
// sent up to which time, and what is being sent. Its only writer is the usage controller.
type UsageStatus struct {
	// startTime is when metering began (the tenant first became Ready).
	// +required
	StartTime metav1.Time `json:"startTime"`

	// statisticalTime is when value was measured.
	// +required
	StatisticalTime metav1.Time `json:"statisticalTime"`

	// value is the cumulative usage at statisticalTime, in the plan's unit.
	// +required
	// +kubebuilder:validation:MaxLength=20
	Value string `json:"value"`

	// runningSeconds is how long the tenant had been Ready at statisticalTime (RunningTime).
	// +optional
	// +kubebuilder:validation:Minimum=0
	RunningSeconds int64 `json:"runningSeconds,omitempty"`

	// running is whether the tenant was Ready at statisticalTime (RunningTime).
	// +optional
	Running bool `json:"running,omitempty"`

	// pushedUntil is the end of the last period KooGallery acknowledged (or that had no usage to
	// send). Nothing before it is sent again.
	// +required
	PushedUntil metav1.Time `json:"pushedUntil"`

	// pushedValue is the cumulative usage at pushedUntil.
	// +required
	// +kubebuilder:validation:MaxLength=20
	PushedValue string `json:"pushedValue"`

	// pending are the periods written here before they are sent, and sent again, with the same
	// meteringSn, until KooGallery acknowledges them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=24
	Pending []UsagePeriod `json:"pending,omitempty"`

	// failures counts consecutive failed pushes.
	// +optional
	Failures int32 `json:"failures,omitempty"`

	// nextAttemptTime is the earliest time the next push may be sent after a failure.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`

	// lastError is why the last push, or the last read of the application's report, failed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
}
