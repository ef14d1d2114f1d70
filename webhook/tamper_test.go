package webhook_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// TestTamperedStatusStaysInItsTenant: status.namespace and status.credentialsSecretRef can be
// written by anyone allowed to patch marketplaceinstances/status. Pointed at another tenant, they
// must lead the endpoint nowhere: queryInstance answers the instance's own credentials, never the
// other tenant's password; kit syncs write only into the instance's own namespace; and
// changeInstanceCheck reads only the instance's own quota. An instance whose crafted name derives
// another tenant's namespace gets nothing of it either: the objects there are not its own.
func TestTamperedStatusStaysInItsTenant(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	// The victim has a long name, so its namespace name is hashed and a short name can equal it.
	victim := createReadyNamed(t, longInstanceName("victim"))
	victimNS := victim.Status.Namespace
	g.Expect(victimNS).To(Equal(render.NamespaceName(victim.Name)))
	victimPassword := tenantPassword(g, victimNS)
	// Usage the tenant's own plan would refuse to downgrade from (envtest runs no quota controller).
	setQuotaUsed(g, victimNS, corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("3")})

	t.Run("status pointed at another tenant", func(t *testing.T) {
		g := NewWithT(t)
		own, orderID := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
		ownNS := own.Status.Namespace
		ownPassword := tenantPassword(g, ownNS)
		t.Cleanup(func() { tamperStatus(t, own.Name, ownNS, false) }) // before its release, which reads it
		tamperStatus(t, own.Name, victimNS, false)

		var rep koogallery.QueryInstanceReply
		send(g, &koogallery.QueryInstanceRequest{InstanceID: own.Spec.InstanceID}, &rep)
		g.Expect(rep.ResultCode).To(Equal(koogallery.ResultSuccess))
		g.Expect(rep.Info).To(HaveLen(1))
		g.Expect(rep.Info[0].AppInfo).NotTo(BeNil())
		g.Expect(rep.Info[0].AppInfo.Password).NotTo(Equal(victimPassword), "another tenant's password answered")
		g.Expect(rep.Info[0].AppInfo.Password).To(Equal(ownPassword))

		r := kitSend(g, &koogallery.TenantSyncRequest{KitCommon: kitCommon(own.Spec.InstanceID, false), OrderID: orderID,
			TenantID: "T-own", TenantCode: "own", Name: "Own", Flag: koogallery.NewInt(koogallery.FlagAdd)})
		g.Expect(r.ResultCode).To(Equal(koogallery.ResultSuccess), r.ResultMsg)
		g.Expect(kitEntries(g, ownNS, "tenants")).To(HaveLen(1))
		expectNoKitObjects(g, victimNS)

		check := code(g, &koogallery.ChangeInstanceCheckRequest{InstanceID: own.Spec.InstanceID,
			ProductInfo: koogallery.ProductInfo{ProductID: testenv.BasicProduct, SKUCode: testenv.BasicSKU, ProductName: "demo"}})
		g.Expect(check.ResultCode).To(Equal(koogallery.ResultSuccess), "another tenant's usage read: %s", check.ResultMsg)
	})

	t.Run("crafted name deriving another tenant's namespace", func(t *testing.T) {
		g := NewWithT(t)
		crafted := strings.TrimPrefix(victimNS, render.NamespacePrefix)
		g.Expect(render.NamespaceName(crafted)).To(Equal(victimNS))
		orderID, lineID := newOrder(testenv.BasicProduct, testenv.BasicSKU)
		// Paused, so that the reconciler leaves it (and the victim's namespace) alone.
		inst := &saasv1alpha1.MarketplaceInstance{
			ObjectMeta: metav1.ObjectMeta{Name: crafted},
			Spec: saasv1alpha1.MarketplaceInstanceSpec{InstanceID: businessID(), State: saasv1alpha1.StateActive, Paused: true,
				Order: saasv1alpha1.OrderReference{OrderID: orderID, OrderLineID: lineID}},
		}
		g.Expect(k8s.Create(ctx, inst)).To(Succeed())
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), inst) })
		g.Eventually(func(g Gomega) {
			g.Expect(meta.IsStatusConditionTrue(getInstance(g, crafted).Status.Conditions, saasv1alpha1.ConditionPaused)).To(BeTrue())
		}).WithTimeout(10 * time.Second).Should(Succeed())
		tamperStatus(t, crafted, victimNS, true)

		var rep koogallery.QueryInstanceReply
		send(g, &koogallery.QueryInstanceRequest{InstanceID: inst.Spec.InstanceID}, &rep)
		g.Expect(rep.ResultCode).To(Equal(koogallery.ResultSuccess))
		g.Expect(rep.Info).To(HaveLen(1))
		g.Expect(rep.Info[0].AppInfo).NotTo(BeNil())
		g.Expect(rep.Info[0].AppInfo.Password).To(BeEmpty(), "another tenant's password answered")

		r := kitSend(g, &koogallery.TenantSyncRequest{KitCommon: kitCommon(inst.Spec.InstanceID, false), OrderID: orderID,
			TenantID: "T-crafted", TenantCode: "crafted", Name: "Crafted", Flag: koogallery.NewInt(koogallery.FlagAdd)})
		g.Expect(r.ResultCode).To(Equal(koogallery.ResultInternalError), r.ResultMsg)
		expectNoKitObjects(g, victimNS)

		check := code(g, &koogallery.ChangeInstanceCheckRequest{InstanceID: inst.Spec.InstanceID,
			ProductInfo: koogallery.ProductInfo{ProductID: testenv.BasicProduct, SKUCode: testenv.BasicSKU, ProductName: "demo"}})
		g.Expect(check.ResultCode).To(Equal(koogallery.ResultSuccess), "another tenant's usage read: %s", check.ResultMsg)
	})
}

// longInstanceName is a unique 63-character instance name, whose namespace name is hashed.
func longInstanceName(what string) string {
	name := fmt.Sprintf("%s-%d-", what, orderSeq.Add(1))
	return name + strings.Repeat("x", 63-len(name))
}

// createReadyNamed creates an instance by hand under name, as an SRE may, and drives it to Ready.
func createReadyNamed(t *testing.T, name string) *saasv1alpha1.MarketplaceInstance {
	t.Helper()
	orderID, lineID := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	inst := &saasv1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{InstanceID: businessID(), State: saasv1alpha1.StateActive,
			Order: saasv1alpha1.OrderReference{OrderID: orderID, OrderLineID: lineID}},
	}
	NewWithT(t).Expect(k8s.Create(context.Background(), inst)).To(Succeed())
	t.Cleanup(func() { release(name) })
	return waitReady(t, name)
}

func tenantPassword(g Gomega, ns string) string {
	secret := &corev1.Secret{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.CredentialsSecretName}, secret)).To(Succeed())
	pw := string(secret.Data[render.CredentialsPasswordKey])
	g.Expect(pw).NotTo(BeEmpty())
	return pw
}

// tamperStatus points the instance's status.namespace and status.credentialsSecretRef at ns, as
// anyone allowed to patch marketplaceinstances/status can; with ready, it also makes the instance
// look Ready (conditions the reconciler's summary agrees with). It returns once the endpoint's
// cache sees the change.
func tamperStatus(t *testing.T, name, ns string, ready bool) {
	t.Helper()
	ctx := context.Background()
	NewWithT(t).Eventually(func(g Gomega) {
		inst := getInstance(g, name)
		if inst.Status.Namespace != ns || (ready && !meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionReady)) {
			base := inst.DeepCopy()
			inst.Status.Namespace = ns
			inst.Status.CredentialsSecretRef = &saasv1alpha1.SecretReference{Namespace: ns, Name: render.CredentialsSecretName}
			if ready {
				for _, c := range []struct{ typ, reason string }{
					{saasv1alpha1.ConditionOrderResolved, saasv1alpha1.ReasonResolved},
					{saasv1alpha1.ConditionProvisioned, saasv1alpha1.ReasonAvailable},
					{saasv1alpha1.ConditionReady, saasv1alpha1.ReasonAvailable},
				} {
					meta.SetStatusCondition(&inst.Status.Conditions, metav1.Condition{Type: c.typ, Status: metav1.ConditionTrue,
						Reason: c.reason, Message: "tampered"})
				}
				inst.Status.AppInfo = &saasv1alpha1.AppInfo{FrontEndURL: "https://tampered.example.com/"}
			}
			g.Expect(k8s.Status().Patch(ctx, inst, client.MergeFrom(base))).To(Succeed())
		}
		cached, err := server.CachedInstance(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(cached.Status.Namespace).To(Equal(ns))
		if ready {
			g.Expect(meta.IsStatusConditionTrue(cached.Status.Conditions, saasv1alpha1.ConditionReady)).To(BeTrue())
		}
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// expectNoKitObjects checks that no kit data and no kit replay record were written in ns.
func expectNoKitObjects(g Gomega, ns string) {
	for _, data := range []string{"tenants", "applications", "users", "departments"} {
		g.Expect(kitEntries(g, ns, data)).To(BeEmpty(), "kit %s written into namespace %s", data, ns)
	}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: webhook.KitCallsConfigMap}, &corev1.ConfigMap{})
	g.Expect(err).To(HaveOccurred(), "kit replay record written into namespace %s", ns)
}
