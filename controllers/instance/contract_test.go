package instance_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/controllers/instance"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// A purchase that never gets a refreshInstance still expires: on the expireTime Query Order
// gives for its order line, which status.expireTime shows.
func TestOrderExpiryFreezesWithoutARefresh(t *testing.T) {
	startOperator(t, instance.Options{})
	expired := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	koo.UpdateOrder(inst.Spec.Order.OrderID, func(o *openapi.Order) { o.Lines[0].ExpireTime = expired })
	create(t, inst)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonExpired)
		g.Expect(got.Status.ExpireTime).NotTo(BeNil())
		g.Expect(got.Status.ExpireTime.Time).To(BeTemporally("==", expired))
		g.Expect(*deployment(g, got.Status.Namespace, "web").Spec.Replicas).To(Equal(int32(0)))
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

// A freeze never waits on Query Order: frozen while the order it was just upgraded to cannot be
// resolved, the tenant is frozen on the plan it runs.
func TestFreezeDoesNotWaitForTheOrder(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	got := waitReady(t, inst.Name)
	ns := got.Status.Namespace

	upgrade := order(t, testenv.ProProduct, testenv.ProSKU)
	koo.FailNext(upgrade.Spec.Order.OrderID, 1000, 500, "MKT.9999")
	ctx := context.Background()
	g := NewWithT(t)
	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) {
		i.Spec.CurrentOrder = &saasv1alpha1.ChangeOrder{OrderID: upgrade.Spec.Order.OrderID, OrderLineID: upgrade.Spec.Order.OrderLineID}
		i.Spec.State = saasv1alpha1.StateFrozen
	})
	g.Eventually(func(g Gomega) {
		cur := get(g, inst.Name)
		expectCondition(g, cur, saasv1alpha1.ConditionOrderResolved, metav1.ConditionFalse, saasv1alpha1.ReasonQueryFailed)
		expectCondition(g, cur, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonFrozenByOrder)
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(0)))
		policies := &networkingv1.NetworkPolicyList{}
		g.Expect(k8s.List(ctx, policies, client.InNamespace(ns))).To(Succeed())
		g.Expect(policyNames(policies)).To(ConsistOf(render.DenyIngressPolicyName, render.EgressPolicyName))
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

// A freeze never waits on a plan either: a tenant whose plan was deleted is frozen from its
// inventory (workloads scaled to zero, ingress denied), and runs again with
// its replica count once the plan is back and it is unfrozen.
func TestFreezeDoesNotWaitForThePlan(t *testing.T) {
	startOperator(t, instance.Options{})
	ctx := context.Background()
	plan := basicPlanCopy(t, "freeze-gone", saasv1alpha1.SKU{ProductID: "freeze-gone", SKUCode: "freeze-gone"})
	if err := k8s.Create(ctx, plan); err != nil {
		t.Fatal(err)
	}
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.Plan = plan.Name })
	create(t, inst)
	ns := waitReady(t, inst.Name).Status.Namespace
	g := NewWithT(t)
	running := *deployment(g, ns, "web").Spec.Replicas
	g.Expect(running).To(BeNumerically(">", 0))

	g.Expect(k8s.Delete(ctx, plan)).To(Succeed())
	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.State = saasv1alpha1.StateFrozen })
	g.Eventually(func(g Gomega) {
		cur := get(g, inst.Name)
		expectCondition(g, cur, saasv1alpha1.ConditionOrderResolved, metav1.ConditionFalse, saasv1alpha1.ReasonPlanNotFound)
		expectCondition(g, cur, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonFrozenByOrder)
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(0)))
		policies := &networkingv1.NetworkPolicyList{}
		g.Expect(k8s.List(ctx, policies, client.InNamespace(ns))).To(Succeed())
		g.Expect(policyNames(policies)).To(ConsistOf(render.DenyIngressPolicyName, render.EgressPolicyName))
	}).WithTimeout(15 * time.Second).Should(Succeed())

	plan.ResourceVersion = ""
	g.Expect(k8s.Create(ctx, plan)).To(Succeed())
	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.State = saasv1alpha1.StateActive })
	g.Eventually(func(g Gomega) {
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(running))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, plan) })
}

// What the buyer bought reaches the tenant: the quantity scales the quota (quotaPerUnit), the
// buyer's parameters render into templates (quoted), the plan's memo is rendered for
// queryInstance, and the entitlement ConfigMap in the tenant namespace says all of it, including
// the expiry and whether the tenant is frozen, kept current.
func TestOrderDataReachesTheTenant(t *testing.T) {
	startOperator(t, instance.Options{})
	ctx := context.Background()
	sku := saasv1alpha1.SKU{ProductID: "OFFI-SEATS", SKUCode: "per-seat"}
	plan := basicPlanCopy(t, "per-seat", sku)
	plan.Spec.QuotaPerUnit = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}
	plan.Spec.AppInfo.Memo = `Sign in at {{ .Order.Params.emailDomainName }} with {{ .Order.Quantity }} seats. 欢迎`
	plan.Spec.Manifests = append(plan.Spec.Manifests, saasv1alpha1.ManifestTemplate{Name: "settings", Template: `
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  domain: {{ .Order.Params.emailDomainName | quote }}
  seats: {{ .Order.Quantity | quote }}
`})
	if err := k8s.Create(ctx, plan); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, plan) })
	inst := order(t, sku.ProductID, sku.SKUCode)
	koo.UpdateOrder(inst.Spec.Order.OrderID, func(o *openapi.Order) {
		o.ExtendParams = []openapi.ExtendParam{{Name: "emailDomainName", Value: "order.example.com"}, {Name: "region", Value: "cn-north-4"}}
		o.Lines[0].ExtendParams = []openapi.ExtendParam{{Name: "emailDomainName", Value: "line.example.com: {evil: true}"}}
		o.Lines[0].Products[0].LinearValue = 5
	})
	create(t, inst)
	got := waitReady(t, inst.Name)
	ns := got.Status.Namespace
	g := NewWithT(t)

	g.Expect(got.Status.Order.LinearValue).To(Equal(int64(5)))
	quota := &corev1.ResourceQuota{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.QuotaName}, quota)).To(Succeed())
	g.Expect(quota.Spec.Hard.Pods().String()).To(Equal("20"), "10 from quota, 2 per seat for 5 seats")

	settings := &corev1.ConfigMap{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "settings"}, settings)).To(Succeed())
	g.Expect(settings.Data).To(Equal(map[string]string{"domain": "line.example.com: {evil: true}", "seats": "5"}))
	g.Expect(got.Status.AppInfo.Memo).To(Equal("Sign in at line.example.com: {evil: true} with 5 seats. 欢迎"))

	entitlement := func(g Gomega) render.Entitlement {
		cm := &corev1.ConfigMap{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.EntitlementConfigMapName}, cm)).To(Succeed())
		var e render.Entitlement
		g.Expect(json.Unmarshal([]byte(cm.Data[render.EntitlementJSONKey]), &e)).To(Succeed())
		g.Expect(cm.Data["frozen"]).To(Equal(strconv.FormatBool(e.Frozen)))
		return e
	}
	e := entitlement(g)
	g.Expect(e.Plan).To(Equal(plan.Name))
	g.Expect(e.SKU).To(Equal(sku.SKUCode))
	g.Expect(e.Quantity).To(Equal(int64(5)))
	g.Expect(e.Params).To(Equal(map[string]string{"emailDomainName": "line.example.com: {evil: true}", "region": "cn-north-4"}))
	g.Expect(e.ExpireTime).To(Equal(got.Status.ExpireTime.UTC().Format(time.RFC3339)))
	g.Expect(e.Frozen).To(BeFalse())

	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.State = saasv1alpha1.StateFrozen })
	g.Eventually(func(g Gomega) { g.Expect(entitlement(g).Frozen).To(BeTrue()) }).WithTimeout(15 * time.Second).Should(Succeed())
}

// A lost callback is caught by the re-check: Query Order is asked again on the schedule, and an
// expiry it now gives in the past (the buyer's period was cut short; the FREEZE never arrived)
// freezes the tenant, with the change in the history.
func TestOrderRecheckActsOnWhatQueryOrderSays(t *testing.T) {
	startOperator(t, instance.Options{OrderRecheckInterval: 2 * time.Second, OrderRecheckQPS: 100})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	got := waitReady(t, inst.Name)
	g := NewWithT(t)
	g.Expect(got.Status.Order.CheckedTime).NotTo(BeNil())

	cut := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	koo.UpdateOrder(inst.Spec.Order.OrderID, func(o *openapi.Order) { o.Lines[0].ExpireTime = cut })
	g.Eventually(func(g Gomega) {
		cur := get(g, inst.Name)
		expectCondition(g, cur, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonExpired)
		g.Expect(cur.Status.ExpireTime.Time).To(BeTemporally("==", cut))
		g.Expect(cur.Status.History).To(ContainElement(And(
			HaveField("Activity", instance.ActivityOrderRecheck),
			HaveField("Detail", ContainSubstring("expires "+cut.Format(time.RFC3339))))))
		g.Expect(*deployment(g, cur.Status.Namespace, "web").Spec.Replicas).To(Equal(int32(0)))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// A tenant expired longer than KooGallery's longest freeze period should have been released: a
// lost releaseInstance is reported (ReleaseOverdue), and the tenant stays frozen with its data.
func TestLostReleaseIsReported(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	koo.UpdateOrder(inst.Spec.Order.OrderID, func(o *openapi.Order) { o.Lines[0].ExpireTime = time.Now().UTC().AddDate(0, 0, -17) })
	create(t, inst)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonReleaseOverdue)
		g.Expect(cond(got, saasv1alpha1.ConditionFrozen).Message).To(ContainSubstring("no releaseInstance arrived"))
		g.Expect(got.DeletionTimestamp).To(BeNil())
		g.Expect(*deployment(g, got.Status.Namespace, "web").Spec.Replicas).To(Equal(int32(0)))
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

// Events mark transitions an SRE acts on, one write each: a tenant provisioned to Ready gets one
// (its order resolving is said by it), a freeze another.
func TestEventsOnTransitions(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	waitReady(t, inst.Name)
	actions := func(g Gomega) []string {
		list := &eventsv1.EventList{}
		g.Expect(k8s.List(context.Background(), list)).To(Succeed())
		var out []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "MarketplaceInstance" && e.Regarding.Name == inst.Name {
				// The note reads "<condition>=<status>: <message>".
				out = append(out, strings.SplitN(e.Note, ":", 2)[0])
			}
		}
		return out
	}
	g := NewWithT(t)
	g.Eventually(actions).WithTimeout(10 * time.Second).Should(ConsistOf("Ready=True"))
	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.State = saasv1alpha1.StateFrozen })
	g.Eventually(actions).WithTimeout(15 * time.Second).Should(ContainElement("Frozen=True"))
	g.Expect(actions(g)).NotTo(ContainElement(HavePrefix(saasv1alpha1.ConditionOrderResolved)))
}
