package render

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strings"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// FieldOwner is the server-side apply field manager of every object rendered here. One owner
// for all of them lets a later apply that omits a field remove it.
const FieldOwner = "marketplace-operator"

// ManagedBy is the value of the app.kubernetes.io/managed-by label on every tenant object.
const ManagedBy = "marketplace-operator"

// LabelManagedBy is the well-known label that says which tool manages an object.
const LabelManagedBy = "app.kubernetes.io/managed-by"

// NamespacePrefix starts every tenant namespace name, so tenants sort together and cannot be
// mistaken for system namespaces.
const NamespacePrefix = "mpi-"

// Names of the objects the operator itself puts in a tenant namespace. They are fixed so that
// a retry finds what an earlier reconcile created; plan templates may not reuse them.
const (
	// CredentialsSecretName is the Secret holding the buyer's initial admin account.
	CredentialsSecretName = "marketplace-credentials"
	// CredentialsUserNameKey is the key of the admin user name in the credentials Secret.
	CredentialsUserNameKey = "userName"
	// CredentialsPasswordKey is the key of the admin password in the credentials Secret.
	CredentialsPasswordKey = "password"
	// QuotaName is the tenant ResourceQuota.
	QuotaName = "tenant-quota"
	// LimitRangeName is the tenant LimitRange.
	LimitRangeName = "tenant-limits"
	// DenyIngressPolicyName is the NetworkPolicy that denies all ingress to the tenant.
	DenyIngressPolicyName = "default-deny-ingress"
	// AllowIngressPolicyName is the NetworkPolicy that re-opens ingress while the tenant is
	// active. The reconciler deletes it to freeze the tenant.
	AllowIngressPolicyName = "allow-tenant-ingress"
	// EgressPolicyName is the NetworkPolicy that limits what the tenant's pods may reach.
	EgressPolicyName = "tenant-egress"
	// BackupJobName is the pre-release backup Job, whatever name the plan's template gives it,
	// so a retried release waits on the same Job instead of starting a second one.
	BackupJobName = "marketplace-backup"
)

// DefaultAdminUserName is the admin account name when a plan does not set one (the CRD
// defaults it too, but plans built in Go skip defaulting).
const DefaultAdminUserName = "admin"

const (
	// maxNameLength is the limit of a DNS label, which a namespace name must be.
	maxNameLength = 63
	// nameHashLength hex characters (40 bits) keep hashed names distinct while leaving most of
	// the name readable.
	nameHashLength = 10
)

// NamespaceName is the tenant namespace of the instance named instanceName. Instance names may
// be 63 characters, so with the prefix the result can be too long for a namespace; then a
// prefix is kept for humans and a hash of the whole instance name keeps it unique. Plain
// truncation would give two long instances sharing a prefix the same namespace.
//
// A hashed name could still equal the plain name of another, specially crafted instance; the
// namespace's controller reference (OwnedBy) tells whose it is.
func NamespaceName(instanceName string) string {
	name := NamespacePrefix + instanceName
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(instanceName))
	suffix := hex.EncodeToString(sum[:])[:nameHashLength]
	// Trimming avoids "--" before the hash, which is valid but reads like a mistake.
	prefix := strings.TrimRight(name[:maxNameLength-1-nameHashLength], "-")
	return prefix + "-" + suffix
}

// Labels are the labels of every object rendered for inst. The manager's cache holds only
// objects that carry the instance label, so every child must carry it. They say where an object
// came from; whose it is, is its controller reference (OwnerReference, OwnedBy).
func Labels(inst *v1alpha1.MarketplaceInstance) map[string]string {
	return map[string]string{
		v1alpha1.LabelInstance: inst.Name,
		LabelManagedBy:         ManagedBy,
	}
}

// AdminUserName is the admin account name to store in the credentials Secret of a tenant on
// plan.
func AdminUserName(plan *v1alpha1.MarketplacePlan) string {
	if plan.Spec.AppInfo.AdminUserName != "" {
		return plan.Spec.AppInfo.AdminUserName
	}
	return DefaultAdminUserName
}

// mergeLabels returns base overlaid with ours: our labels win, so a template can neither drop an
// object out of the manager's cache nor make it say it came from another instance or plan.
func mergeLabels(base map[string]string, ours map[string]string) map[string]string {
	merged := make(map[string]string, len(base)+len(ours))
	maps.Copy(merged, base)
	maps.Copy(merged, ours)
	return merged
}
