package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SKU is one KooGallery product specification that a plan serves.
type SKU struct {
	// productId is the KooGallery product ID, as Query Order reports it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ProductID string `json:"productId"`

	// skuCode is the KooGallery SKU code of the product specification, as
	// Query Order reports it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	SKUCode string `json:"skuCode"`
}

// ManifestTemplate is one Kubernetes object of the tenant workload,
// written as a Go text/template that renders to YAML or JSON.
type ManifestTemplate struct {
	// name identifies the template within the plan; objects rendered from a
	// template that leaves the plan are pruned from every tenant on it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// template is the manifest as a Go text/template. It may use
	// .InstanceID, .Name (the MarketplaceInstance name), .Namespace (the
	// tenant namespace), .Plan, .SKU, .CredentialsSecret and .Values (this
	// plan's values), and the quote function ({{ .Values.x | quote }}) to
	// paste a value into YAML as a string. It must render to exactly one
	// namespaced object; its namespace is always the tenant namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	Template string `json:"template"`
}

// AppInfoTemplates are the buyer-facing URLs that KooGallery shows once
// the tenant is ready.
type AppInfoTemplates struct {
	// frontEndUrl is a Go text/template of the site URL the buyer uses
	// (KooGallery allows 512 characters once rendered). Same variables as the
	// manifest templates.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	FrontEndURL string `json:"frontEndUrl"`

	// adminUrl is a Go text/template of the admin console URL, if the app has
	// one.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	AdminURL string `json:"adminUrl,omitempty"`

	// adminUserName is the buyer's initial admin account name, stored with the
	// generated password in the tenant's credentials Secret.
	// +optional
	// +kubebuilder:default=admin
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._@-]+$`
	AdminUserName string `json:"adminUserName,omitempty"`

	// memo is a Go text/template of the instructions KooGallery shows the
	// buyer with the URLs (queryInstance's memo). Same variables as the
	// manifest templates. Once rendered it must fit KooGallery's 1024
	// characters with every non-ASCII character written as a \uXXXX escape
	// (6 characters each).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Memo string `json:"memo,omitempty"`
}

// BackupSpec is a Job run in the tenant namespace before it is deleted on
// release.
type BackupSpec struct {
	// jobTemplate is a Go text/template that renders to a batch/v1 Job
	// manifest (same variables as the manifest templates). Release waits until
	// the Job succeeds.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	JobTemplate string `json:"jobTemplate"`

	// timeout bounds how long release waits for the backup Job; after it, the
	// release stays blocked with a BackupFailed condition until an operator
	// intervenes, so no data is lost silently.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// NetworkSpec widens what a tenant's pods may reach.
type NetworkSpec struct {
	// egress are NetworkPolicy egress rules added to the tenant's egress policy, which otherwise
	// allows the tenant's own pods, cluster DNS and addresses outside the cluster's networks
	// (see the operator's --tenant-egress-except). Use them for a database in another namespace,
	// a node-local DNS cache or a private service the app needs.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Egress []networkingv1.NetworkPolicyEgressRule `json:"egress,omitempty"`
}

// MarketplacePlanSpec says which KooGallery SKUs a plan serves and what a
// tenant on it gets.
// +kubebuilder:validation:XValidation:rule="!has(self.values) || self.values.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="values keys must be identifiers (letters, digits, '_') so templates can read them as .Values.<key>"
type MarketplacePlanSpec struct {
	// displayName is a human-readable name for the plan.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// skus are the KooGallery product specifications (productId and skuCode)
	// this plan serves. An order whose SKU matches one of them is provisioned
	// on this plan. Two plans should not claim the same SKU; if they do, the
	// instance reports an ambiguous plan.
	// +required
	// +listType=map
	// +listMapKey=productId
	// +listMapKey=skuCode
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	SKUs []SKU `json:"skus"`

	// quota is the ResourceQuota hard limits of every tenant namespace on this
	// plan.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Quota corev1.ResourceList `json:"quota,omitempty"`

	// quotaPerUnit is added to quota once per unit the buyer bought (the order
	// line's linearValue: seats, users, quantity), so that a plan sold per seat
	// gets a quota per seat. An order without a linearValue counts as 1 unit.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	QuotaPerUnit corev1.ResourceList `json:"quotaPerUnit,omitempty"`

	// limits are the LimitRange items (default requests and limits for
	// containers) of every tenant namespace on this plan.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Limits []corev1.LimitRangeItem `json:"limits,omitempty"`

	// values are the plan parameters (replica count, sizes, host names...)
	// that the templates read as .Values.<key>.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Values map[string]string `json:"values,omitempty"`

	// manifests are the tenant workload: one templated Kubernetes object each,
	// applied with server-side apply into the tenant namespace.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Manifests []ManifestTemplate `json:"manifests"`

	// appInfo are the URLs and account name reported to the buyer through
	// KooGallery.
	// +required
	AppInfo AppInfoTemplates `json:"appInfo"`

	// backup, when set, is run before a released tenant is deleted.
	// +optional
	Backup *BackupSpec `json:"backup,omitempty"`

	// network widens the tenant's network isolation, which the operator applies to every
	// tenant.
	// +optional
	Network *NetworkSpec `json:"network,omitempty"`

	// metering, when set, makes the plan pay-per-use: how its tenants' usage is measured and
	// pushed to KooGallery.
	// +optional
	Metering *MeteringSpec `json:"metering,omitempty"`
}

// MarketplacePlanStatus is the observed state of a MarketplacePlan.
type MarketplacePlanStatus struct {
	// observedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions say whether the plan's templates are usable (Ready).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MarketplacePlan maps KooGallery SKUs to what a tenant gets: quota,
// limits, the templated workload and the URLs shown to the buyer.
// Instances move between plans on upgrade.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mpp,categories=marketplace
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="SKUs",type=string,JSONPath=`.spec.skus[*].skuCode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (lower-case letters, digits and '-', at most 63 characters) because it is used as a label value"
type MarketplacePlan struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what tenants on this plan get.
	// +required
	Spec MarketplacePlanSpec `json:"spec"`

	// status is the observed state of the plan.
	// +optional
	Status MarketplacePlanStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MarketplacePlanList is a list of MarketplacePlan.
type MarketplacePlanList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MarketplacePlan `json:"items"`
}
