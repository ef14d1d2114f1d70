package render

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// Type metadata is set on every typed object because a server-side apply patch is the object
// itself: without apiVersion and kind the API server cannot tell what is being applied.
var (
	namespaceType     = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
	quotaType         = metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"}
	limitRangeType    = metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"}
	secretType        = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	configMapType     = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	networkPolicyType = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
)

// PodSecurityLabelPrefix starts the labels that set a namespace's Pod Security level.
const PodSecurityLabelPrefix = "pod-security.kubernetes.io/"

// metadataNameLabel is set by the API server on every namespace (immutable, equal to its name),
// which makes it the one label a NetworkPolicy can trust to identify a namespace.
const metadataNameLabel = "kubernetes.io/metadata.name"

// Namespace is the tenant namespace. Pod Security "restricted" is enforced, not only audited,
// because plan templates run arbitrary images in a namespace shared with nobody but the buyer;
// "latest" follows the cluster's newest policy, so a cluster upgrade tightens tenants too.
func Namespace(inst *v1alpha1.MarketplaceInstance) *corev1.Namespace {
	labels := Labels(inst)
	for _, mode := range []string{"enforce", "audit", "warn"} {
		labels[PodSecurityLabelPrefix+mode] = "restricted"
		labels[PodSecurityLabelPrefix+mode+"-version"] = "latest"
	}
	return &corev1.Namespace{
		TypeMeta:   namespaceType,
		ObjectMeta: metav1.ObjectMeta{Name: NamespaceName(inst.Name), Labels: labels},
	}
}

// ResourceQuota is the tenant quota, or nil when the plan sets none: an empty quota object
// would limit nothing and only cost an API call. When a plan drops its quota the reconciler
// deletes the existing one by name.
func ResourceQuota(inst *v1alpha1.MarketplaceInstance, plan *v1alpha1.MarketplacePlan) *corev1.ResourceQuota {
	hard := Quota(plan, Units(inst.Status.Order))
	if len(hard) == 0 {
		return nil
	}
	return &corev1.ResourceQuota{
		TypeMeta:   quotaType,
		ObjectMeta: tenantMeta(inst, QuotaName),
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
	}
}

// Quota is the hard limits of a tenant on plan that bought units: the plan's quota plus
// quotaPerUnit once per unit.
func Quota(plan *v1alpha1.MarketplacePlan, units int64) corev1.ResourceList {
	hard := plan.Spec.Quota.DeepCopy()
	if len(plan.Spec.QuotaPerUnit) == 0 {
		return hard
	}
	if hard == nil {
		hard = corev1.ResourceList{}
	}
	for name, per := range plan.Spec.QuotaPerUnit {
		total := hard[name]
		add := per.DeepCopy()
		add.Mul(max(units, 1))
		total.Add(add)
		hard[name] = total
	}
	return hard
}

// LimitRange is the tenant's default container requests and limits, or nil when the plan sets
// none (the reconciler then deletes any existing one by name).
func LimitRange(inst *v1alpha1.MarketplaceInstance, plan *v1alpha1.MarketplacePlan) *corev1.LimitRange {
	if len(plan.Spec.Limits) == 0 {
		return nil
	}
	limits := make([]corev1.LimitRangeItem, len(plan.Spec.Limits))
	for i := range plan.Spec.Limits {
		plan.Spec.Limits[i].DeepCopyInto(&limits[i])
	}
	return &corev1.LimitRange{
		TypeMeta:   limitRangeType,
		ObjectMeta: tenantMeta(inst, LimitRangeName),
		Spec:       corev1.LimitRangeSpec{Limits: limits},
	}
}

// NetworkOptions are the inputs of NetworkPolicies that do not come from the instance.
type NetworkOptions struct {
	// Frozen blocks all ingress traffic to the tenant.
	Frozen bool
	// IngressNamespaces are the namespaces allowed to reach the tenant's pods, typically the
	// ingress controller's. With none, only the tenant's own pods can reach each other.
	IngressNamespaces []string
	// EgressExcept are the address ranges the tenant may not reach although they are outside
	// the cluster as far as a NetworkPolicy can tell: the cluster's own networks (pods,
	// services, nodes, hence the API server and the operator's endpoint) and link-local
	// addresses (cloud metadata). Empty means DefaultEgressExcept.
	EgressExcept []string
	// Egress are the plan's own egress rules, which widen what the tenant may reach.
	Egress []networkingv1.NetworkPolicyEgressRule
}

// DefaultEgressExcept are the private, shared (CGNAT), loopback and link-local ranges of IPv4
// and IPv6. Cluster networks are almost always in them; a cluster whose pods, services or API
// server use public addresses must add those ranges (--tenant-egress-except).
var DefaultEgressExcept = []string{
	"10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16",
	"::1/128", "fc00::/7", "fe80::/10",
}

// NetworkPolicies isolate the tenant. NetworkPolicies only ever add allowed traffic, so
// isolation is a deny-all policy that selects every pod plus, while the tenant is active, one
// policy that allows its own pods and the named namespaces (matched on the API server-managed
// kubernetes.io/metadata.name label, which a tenant cannot forge on its own namespace). Other
// tenants are in neither, so they cannot reach this one.
//
// Freezing drops the allow policy: ingress is blocked without touching anything the tenant
// owns. Keeping deny-all in both states means an unfreeze never opens a window with no policy
// at all.
//
// Egress is denied but for the tenant's own pods, DNS (kube-dns in kube-system) and addresses
// outside opts.EgressExcept on any port, plus what the plan adds: a tenant reaches the internet,
// not the cluster's networks, the API server, the operator, other tenants or cloud metadata.
func NetworkPolicies(inst *v1alpha1.MarketplaceInstance, opts NetworkOptions) []*networkingv1.NetworkPolicy {
	ingressOnly := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	deny := &networkingv1.NetworkPolicy{
		TypeMeta:   networkPolicyType,
		ObjectMeta: tenantMeta(inst, DenyIngressPolicyName),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: ingressOnly,
		},
	}
	egress := egressPolicy(inst, opts)
	if opts.Frozen {
		return []*networkingv1.NetworkPolicy{deny, egress}
	}
	from := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	if namespaces := sortedUnique(opts.IngressNamespaces); len(namespaces) > 0 {
		from = append(from, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key:      metadataNameLabel,
				Operator: metav1.LabelSelectorOpIn,
				Values:   namespaces,
			}}},
		})
	}
	allow := &networkingv1.NetworkPolicy{
		TypeMeta:   networkPolicyType,
		ObjectMeta: tenantMeta(inst, AllowIngressPolicyName),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: ingressOnly,
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: from}},
		},
	}
	return []*networkingv1.NetworkPolicy{deny, allow, egress}
}

// egressPolicy selects every pod of the tenant for egress, which denies all egress it does not
// allow. Every field the API server would default is set, so the live policy equals the
// rendered one and drift can be told by comparing them.
func egressPolicy(inst *v1alpha1.MarketplaceInstance, opts NetworkOptions) *networkingv1.NetworkPolicy {
	except := sortedUnique(opts.EgressExcept)
	if len(except) == 0 {
		except = DefaultEgressExcept
	}
	var v4, v6 []string
	for _, cidr := range except {
		if strings.Contains(cidr, ":") {
			v6 = append(v6, cidr)
		} else {
			v4 = append(v4, cidr)
		}
	}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dnsPort := intstr.FromInt32(53)
	rules := []networkingv1.NetworkPolicyEgressRule{
		{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
		{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{metadataNameLabel: "kube-system"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dnsPort}, {Protocol: &tcp, Port: &dnsPort}},
		},
		{To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: v4}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: v6}},
		}},
	}
	for _, r := range opts.Egress {
		r = *r.DeepCopy()
		for i := range r.Ports {
			if r.Ports[i].Protocol == nil {
				r.Ports[i].Protocol = &tcp
			}
		}
		rules = append(rules, r)
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   networkPolicyType,
		ObjectMeta: tenantMeta(inst, EgressPolicyName),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      rules,
		},
	}
}

// CredentialsSecret holds the buyer's initial admin account. The password is an input because
// it must be generated once (GeneratePassword) and then read back from the existing Secret:
// rendering a new one on every reconcile would rotate it under the buyer.
//
// The data is set as bytes, not stringData, because stringData is write-only and would make
// every server-side apply look like a change. Immutable is stated as false so this field owner
// holds it: an SRE can still rotate a leaked password in place, and nobody can freeze the
// Secret into something the reconciler could only replace by deleting it.
func CredentialsSecret(inst *v1alpha1.MarketplaceInstance, userName, password string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   secretType,
		ObjectMeta: tenantMeta(inst, CredentialsSecretName),
		Type:       corev1.SecretTypeOpaque,
		Immutable:  ptr.To(false),
		Data: map[string][]byte{
			CredentialsUserNameKey: []byte(userName),
			CredentialsPasswordKey: []byte(password),
		},
	}
}

// tenantMeta is the metadata of an operator-owned object in the tenant namespace.
func tenantMeta(inst *v1alpha1.MarketplaceInstance, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: NamespaceName(inst.Name), Labels: Labels(inst)}
}

// sortedUnique makes list fields order-independent, so the same options always apply the same
// object and server-side apply sees no change.
func sortedUnique(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
