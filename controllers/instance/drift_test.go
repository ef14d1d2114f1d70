package instance_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/controllers/instance"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// What isolates a tenant is put back when someone edits it by hand, on the edit's own watch
// event: the NetworkPolicies' specs (a policy that selects nothing, an egress rule that allows
// everything, a deleted policy) and the namespace's Pod Security labels. The labels are changed
// as the manager here, because the admission policy refuses anyone else: this is the operator's
// own repair, for clusters that run without that policy.
func TestSecurityDriftIsRepaired(t *testing.T) {
	op := startOperator(t, instance.Options{IngressNamespaces: []string{"ingress-nginx"}})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	ns := waitReady(t, inst.Name).Status.Namespace
	g := NewWithT(t)
	ctx := context.Background()
	asManager, err := client.New(env.ManagerConfig, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())

	spec := func(name string) func(g Gomega) networkingv1.NetworkPolicySpec {
		return func(g Gomega) networkingv1.NetworkPolicySpec {
			np := &networkingv1.NetworkPolicy{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, np)).To(Succeed())
			return np.Spec
		}
	}
	want := map[string]networkingv1.NetworkPolicySpec{}
	for _, name := range []string{render.DenyIngressPolicyName, render.AllowIngressPolicyName, render.EgressPolicyName} {
		want[name] = spec(name)(g)
	}
	edits := []struct {
		policy, patch string
	}{
		{render.DenyIngressPolicyName, `{"spec":{"podSelector":{"matchLabels":{"nothing":"matches"}}}}`},
		{render.AllowIngressPolicyName, `{"spec":{"ingress":[{}]}}`},
		{render.EgressPolicyName, `{"spec":{"egress":[{}]}}`},
	}
	for _, e := range edits {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: e.policy}}
		g.Expect(k8s.Patch(ctx, np, client.RawPatch(types.MergePatchType, []byte(e.patch)))).To(Succeed())
		g.Eventually(spec(e.policy)).WithTimeout(10*time.Second).Should(Equal(want[e.policy]), "policy %s after %s", e.policy, e.patch)
	}
	g.Expect(k8s.Delete(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.EgressPolicyName}})).To(Succeed())
	g.Eventually(spec(render.EgressPolicyName)).WithTimeout(10 * time.Second).Should(Equal(want[render.EgressPolicyName]))

	nsLabels := func(g Gomega) map[string]string {
		n := &corev1.Namespace{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, n)).To(Succeed())
		return n.Labels
	}
	patch := `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged","pod-security.kubernetes.io/warn":null}}}`
	g.Expect(asManager.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
	g.Eventually(nsLabels).WithTimeout(10 * time.Second).Should(And(
		HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"),
		HaveKeyWithValue("pod-security.kubernetes.io/warn", "restricted")))

	// Repaired, the tenant is steady again: a forced pass writes nothing.
	writes := op.writes.Load()
	forceReconcile(t, inst.Name)
	g.Consistently(func() int64 { return op.writes.Load() }).WithTimeout(2 * time.Second).Should(Equal(writes))
}
