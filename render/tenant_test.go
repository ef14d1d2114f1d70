package render_test

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// commonLabels of config/samples' instance.
var commonLabels = map[string]string{
	"saas.marketplace.dev/instance": "cs2211181819b4lvs-000001",
	"app.kubernetes.io/managed-by":  "marketplace-operator",
}

// checkMeta asserts the type, name, namespace and labels every rendered object must have.
func checkMeta(t *testing.T, typ metav1.TypeMeta, meta metav1.ObjectMeta, wantType metav1.TypeMeta, name, namespace string, labels map[string]string) {
	t.Helper()
	if typ != wantType {
		t.Errorf("type %v, want %v", typ, wantType)
	}
	if meta.Name != name || meta.Namespace != namespace {
		t.Errorf("object %s/%s, want %s/%s", meta.Namespace, meta.Name, namespace, name)
	}
	if !maps.Equal(meta.Labels, labels) {
		t.Errorf("labels %v, want %v", meta.Labels, labels)
	}
}

func TestNamespace(t *testing.T) {
	cases := []struct {
		name     string
		inst     *v1alpha1.MarketplaceInstance
		wantName string
	}{
		{"sample", sampleInstance(t, ""), sampleNamespace},
		{"long name is hashed", testInstance("n23456789-123456789-123456789-123456789-123456789-123456789-123"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := render.Namespace(tc.inst)
			want := render.Labels(tc.inst)
			for _, mode := range []string{"enforce", "audit", "warn"} {
				want["pod-security.kubernetes.io/"+mode] = "restricted"
				want["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
			}
			wantName := tc.wantName
			if wantName == "" {
				wantName = render.NamespaceName(tc.inst.Name)
			}
			checkMeta(t, ns.TypeMeta, ns.ObjectMeta, metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, wantName, "", want)
		})
	}
}

func TestResourceQuota(t *testing.T) {
	inst := sampleInstance(t, "")
	cases := []struct {
		name string
		plan *v1alpha1.MarketplacePlan
		want corev1.ResourceList // nil: no quota object
	}{
		{"basic sample", basicPlan(t), corev1.ResourceList{
			"pods": resource.MustParse("10"), "requests.cpu": resource.MustParse("1"), "requests.memory": resource.MustParse("1Gi"),
			"limits.cpu": resource.MustParse("2"), "limits.memory": resource.MustParse("2Gi"), "persistentvolumeclaims": resource.MustParse("2"),
		}},
		{"pro sample", proPlan(t), corev1.ResourceList{
			"pods": resource.MustParse("30"), "requests.cpu": resource.MustParse("4"), "requests.memory": resource.MustParse("4Gi"),
			"limits.cpu": resource.MustParse("8"), "limits.memory": resource.MustParse("8Gi"), "persistentvolumeclaims": resource.MustParse("10"),
		}},
		{"no quota", testPlan(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			quota := render.ResourceQuota(inst, tc.plan)
			if tc.want == nil {
				if quota != nil {
					t.Fatalf("want nil, got %v", quota)
				}
				return
			}
			checkMeta(t, quota.TypeMeta, quota.ObjectMeta, metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"}, "tenant-quota", sampleNamespace, commonLabels)
			if len(quota.Spec.Hard) != len(tc.want) {
				t.Fatalf("hard %v, want %v", quota.Spec.Hard, tc.want)
			}
			for name, q := range tc.want {
				if got := quota.Spec.Hard[name]; got.Cmp(q) != 0 {
					t.Errorf("%s = %s, want %s", name, got.String(), q.String())
				}
			}
			quota.Spec.Hard["pods"] = resource.MustParse("999")
			if got := tc.plan.Spec.Quota["pods"]; got.Cmp(resource.MustParse("999")) == 0 {
				t.Error("the quota aliases the plan")
			}
		})
	}
}

func TestLimitRange(t *testing.T) {
	inst := sampleInstance(t, "")
	sampleLimits := []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Default:        corev1.ResourceList{"cpu": resource.MustParse("200m"), "memory": resource.MustParse("256Mi")},
		DefaultRequest: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("128Mi")},
	}}
	cases := []struct {
		name string
		plan *v1alpha1.MarketplacePlan
		want []corev1.LimitRangeItem // nil: no LimitRange
	}{
		{"basic sample", basicPlan(t), sampleLimits},
		{"pro sample", proPlan(t), sampleLimits},
		{"no limits", testPlan(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lr := render.LimitRange(inst, tc.plan)
			if tc.want == nil {
				if lr != nil {
					t.Fatalf("want nil, got %v", lr)
				}
				return
			}
			checkMeta(t, lr.TypeMeta, lr.ObjectMeta, metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"}, "tenant-limits", sampleNamespace, commonLabels)
			if len(lr.Spec.Limits) != len(tc.want) {
				t.Fatalf("limits %v, want %v", lr.Spec.Limits, tc.want)
			}
			for i, item := range tc.want {
				got := lr.Spec.Limits[i]
				if got.Type != item.Type || !sameResources(got.Default, item.Default) || !sameResources(got.DefaultRequest, item.DefaultRequest) {
					t.Errorf("limit %d = %+v, want %+v", i, got, item)
				}
			}
			lr.Spec.Limits[0].Default["cpu"] = resource.MustParse("9")
			if got := tc.plan.Spec.Limits[0].Default["cpu"]; got.Cmp(resource.MustParse("9")) == 0 {
				t.Error("the LimitRange aliases the plan")
			}
		})
	}
}

func sameResources(a, b corev1.ResourceList) bool {
	return maps.EqualFunc(a, b, func(x, y resource.Quantity) bool { return x.Cmp(y) == 0 })
}

func TestNetworkPolicies(t *testing.T) {
	inst := sampleInstance(t, "")
	sameNamespace := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}}
	fromNamespaces := func(names ...string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: names}},
		}}
	}
	cases := []struct {
		name     string
		opts     render.NetworkOptions
		wantFrom []networkingv1.NetworkPolicyPeer // nil: frozen, no allow policy
	}{
		{"active, tenant only", render.NetworkOptions{}, []networkingv1.NetworkPolicyPeer{sameNamespace}},
		{"active, ingress controller", render.NetworkOptions{IngressNamespaces: []string{"ingress-nginx"}},
			[]networkingv1.NetworkPolicyPeer{sameNamespace, fromNamespaces("ingress-nginx")}},
		{"namespaces sorted, deduplicated, blanks dropped", render.NetworkOptions{IngressNamespaces: []string{"z", "", "a", "z"}},
			[]networkingv1.NetworkPolicyPeer{sameNamespace, fromNamespaces("a", "z")}},
		{"frozen", render.NetworkOptions{Frozen: true, IngressNamespaces: []string{"ingress-nginx"}}, nil},
	}
	policyType := metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
	ingressOnly := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			policies := render.NetworkPolicies(inst, tc.opts)
			wantCount := 3
			if tc.wantFrom == nil {
				wantCount = 2
			}
			if len(policies) != wantCount {
				t.Fatalf("got %d policies, want %d", len(policies), wantCount)
			}
			deny := policies[0]
			checkMeta(t, deny.TypeMeta, deny.ObjectMeta, policyType, "default-deny-ingress", sampleNamespace, commonLabels)
			if len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 ||
				!slices.Equal(deny.Spec.PolicyTypes, ingressOnly) || deny.Spec.Ingress != nil || deny.Spec.Egress != nil {
				t.Errorf("deny policy is not deny-all-ingress: %+v", deny.Spec)
			}
			egress := policies[len(policies)-1]
			checkMeta(t, egress.TypeMeta, egress.ObjectMeta, policyType, "tenant-egress", sampleNamespace, commonLabels)
			if tc.wantFrom == nil {
				return
			}
			allow := policies[1]
			checkMeta(t, allow.TypeMeta, allow.ObjectMeta, policyType, "allow-tenant-ingress", sampleNamespace, commonLabels)
			if !slices.Equal(allow.Spec.PolicyTypes, ingressOnly) || len(allow.Spec.Ingress) != 1 {
				t.Fatalf("allow policy spec %+v", allow.Spec)
			}
			if got := allow.Spec.Ingress[0].From; !reflect.DeepEqual(got, tc.wantFrom) {
				t.Errorf("from %+v, want %+v", got, tc.wantFrom)
			}
			if len(allow.Spec.Ingress[0].Ports) != 0 {
				t.Errorf("allow policy restricts ports: %+v", allow.Spec.Ingress[0].Ports)
			}
		})
	}
}

func TestEgressPolicy(t *testing.T) {
	inst := sampleInstance(t, "")
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns, https := intstr.FromInt32(53), intstr.FromInt32(443)
	ownPods := networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}
	clusterDNS := networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
	}
	internet := func(v4, v6 []string) networkingv1.NetworkPolicyEgressRule {
		return networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: v4}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: v6}},
		}}
	}
	planRule := networkingv1.NetworkPolicyEgressRule{
		To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.5/32"}}},
		Ports: []networkingv1.NetworkPolicyPort{{Port: &https}},
	}
	planRuleDefaulted := *planRule.DeepCopy()
	planRuleDefaulted.Ports[0].Protocol = &tcp
	cases := []struct {
		name string
		opts render.NetworkOptions
		want []networkingv1.NetworkPolicyEgressRule
	}{
		{"default: no cluster networks, no link-local", render.NetworkOptions{}, []networkingv1.NetworkPolicyEgressRule{ownPods, clusterDNS,
			internet([]string{"10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"},
				[]string{"::1/128", "fc00::/7", "fe80::/10"})}},
		{"the platform's own ranges, sorted", render.NetworkOptions{EgressExcept: []string{"203.0.113.0/24", "169.254.0.0/16", "2001:db8::/32"}},
			[]networkingv1.NetworkPolicyEgressRule{ownPods, clusterDNS, internet([]string{"169.254.0.0/16", "203.0.113.0/24"}, []string{"2001:db8::/32"})}},
		{"a plan widens it; the protocol the API server would default is set", render.NetworkOptions{EgressExcept: []string{"10.0.0.0/8"},
			Egress: []networkingv1.NetworkPolicyEgressRule{planRule}},
			[]networkingv1.NetworkPolicyEgressRule{ownPods, clusterDNS, internet([]string{"10.0.0.0/8"}, nil), planRuleDefaulted}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, frozen := range []bool{false, true} {
				tc.opts.Frozen = frozen
				policies := render.NetworkPolicies(inst, tc.opts)
				egress := policies[len(policies)-1]
				if !slices.Equal(egress.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) ||
					len(egress.Spec.PodSelector.MatchLabels)+len(egress.Spec.PodSelector.MatchExpressions) != 0 || egress.Spec.Ingress != nil {
					t.Errorf("frozen=%v: not an egress policy over every pod: %+v", frozen, egress.Spec)
				}
				if !reflect.DeepEqual(egress.Spec.Egress, tc.want) {
					t.Errorf("frozen=%v: egress\n%+v\nwant\n%+v", frozen, egress.Spec.Egress, tc.want)
				}
			}
			if tc.opts.Egress != nil && tc.opts.Egress[0].Ports[0].Protocol != nil {
				t.Error("rendering changed the plan's rule")
			}
		})
	}
}

func TestCredentialsSecret(t *testing.T) {
	cases := []struct {
		name, user, password string
	}{
		{"sample", "admin", "Zq3!a-Very.Long_Password"},
		{"empty password is kept as given", "root", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := render.CredentialsSecret(sampleInstance(t, ""), tc.user, tc.password)
			checkMeta(t, s.TypeMeta, s.ObjectMeta, metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, "marketplace-credentials", sampleNamespace, commonLabels)
			if s.Type != corev1.SecretTypeOpaque {
				t.Errorf("type %q", s.Type)
			}
			if s.Immutable == nil || *s.Immutable {
				t.Errorf("immutable %v, want an explicit false", s.Immutable)
			}
			want := map[string]string{"userName": tc.user, "password": tc.password}
			if len(s.Data) != len(want) || len(s.StringData) != 0 {
				t.Fatalf("data %v, stringData %v", s.Data, s.StringData)
			}
			for k, v := range want {
				if string(s.Data[k]) != v {
					t.Errorf("%s = %q, want %q", k, s.Data[k], v)
				}
			}
		})
	}
}
