package webhook_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// An upgrade no plan can serve is never acknowledged: KooGallery is answered 000005 with the
// reason (it retries, then fails and refunds the order), the instance says why, and once the
// platform team adds a plan for the SKU the next retry is answered 000000.
func TestUndeliverableUpgradeIsNotAcknowledged(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id := inst.Spec.InstanceID

	upID, upLine := newOrder("OFFI-delivery", "sku-nobody-serves")
	upgrade := &koogallery.UpgradeInstanceRequest{InstanceID: id, OrderID: upID, OrderLineID: upLine}
	var last koogallery.Reply
	g.Eventually(func() string { last = code(g, upgrade); return last.ResultCode }).
		WithTimeout(20 * time.Second).Should(Equal(koogallery.ResultInternalError))
	g.Expect(last.ResultMsg).To(ContainSubstring(saasv1alpha1.ReasonUnknownSKU))
	g.Expect(last.ResultMsg).To(ContainSubstring("sku-nobody-serves"))
	cur := getInstance(g, inst.Name)
	c := meta.FindStatusCondition(cur.Status.Conditions, saasv1alpha1.ConditionOrderResolved)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Reason).To(Equal(saasv1alpha1.ReasonUnknownSKU))
	g.Expect(cur.Status.Plan).To(Equal(testenv.BasicPlan), "the tenant keeps running what it has")

	// A renewal with a change to the same SKU is answered the same way.
	changeID, changeLine := newOrder("OFFI-delivery", "sku-nobody-serves")
	renewal := &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewalChange, OrderID: changeID, OrderLineID: changeLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(time.Now().AddDate(1, 0, 0))}
	g.Eventually(func() string { return code(g, renewal).ResultCode }).WithTimeout(20 * time.Second).Should(Equal(koogallery.ResultInternalError))

	ctx := context.Background()
	plan := &saasv1alpha1.MarketplacePlan{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: testenv.BasicPlan}, plan)).To(Succeed())
	served := &saasv1alpha1.MarketplacePlan{ObjectMeta: metav1.ObjectMeta{Name: "delivery-late-plan"}, Spec: *plan.Spec.DeepCopy()}
	served.Spec.SKUs = []saasv1alpha1.SKU{{ProductID: "OFFI-delivery", SKUCode: "sku-nobody-serves"}}
	g.Expect(k8s.Create(ctx, served)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, served) })
	g.Eventually(func() string { return code(g, renewal).ResultCode }).WithTimeout(20 * time.Second).Should(Equal(koogallery.ResultSuccess))
	// The upgrade's order was superseded by the renewal's: acknowledged, nothing to deliver.
	g.Expect(code(g, upgrade).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(getInstance(g, inst.Name).Status.Plan).To(Equal(served.Name))
}

// KooGallery re-signs every retry, so a late retry of a renewal looks newer than the cancellation
// of that renewal period that followed it; it must not bring the cancelled period back.
func TestLateRenewalRetryDoesNotUndoCancellation(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id := inst.Spec.InstanceID
	renewID, renewLine := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	year := time.Now().UTC().AddDate(1, 0, 0).Truncate(time.Second)
	month := time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Second)
	renewal := &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: renewID, OrderLineID: renewLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(year)}
	g.Expect(code(g, renewal).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(code(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneUnsubscribeRenewalPeriod, OrderID: renewID, OrderLineID: renewLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(month)}).ResultCode).To(Equal(koogallery.ResultSuccess))
	// The retry is signed now, after the cancellation.
	g.Expect(code(g, renewal).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(getInstance(g, inst.Name).Spec.ExpireTime.Time.Equal(month)).To(BeTrue(), "a late renewal retry undid the cancelled period")

	// The same order with another expiry is not a retry: it is ordered by its timestamp.
	later := year.AddDate(1, 0, 0)
	g.Expect(code(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: renewID, OrderLineID: renewLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(later)}).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(getInstance(g, inst.Name).Spec.ExpireTime.Time.Equal(later)).To(BeTrue())
}

// queryInstance gives the plan's memo (non-ASCII escaped as the spec requires) with the URLs
// and account, and keeps giving them while the instance is frozen.
func TestQueryInstanceMemoAndFrozen(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	plan := &saasv1alpha1.MarketplacePlan{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: testenv.BasicPlan}, plan)).To(Succeed())
	memoPlan := &saasv1alpha1.MarketplacePlan{ObjectMeta: metav1.ObjectMeta{Name: "memo-plan"}, Spec: *plan.Spec.DeepCopy()}
	memoPlan.Spec.SKUs = []saasv1alpha1.SKU{{ProductID: "OFFI-memo", SKUCode: "memo"}}
	memoPlan.Spec.AppInfo.Memo = "管理员: {{ .Name }}"
	g.Expect(k8s.Create(ctx, memoPlan)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, memoPlan) })
	inst, _ := createReady(t, "OFFI-memo", "memo")
	id := inst.Spec.InstanceID

	query := func(g Gomega) (koogallery.QueryInstanceReply, []byte) {
		body, err := koogallery.MarshalRequest(&koogallery.QueryInstanceRequest{InstanceID: id})
		g.Expect(err).NotTo(HaveOccurred())
		raw := post(g, basicKey, body, time.Now(), businessID())
		var rep koogallery.QueryInstanceReply
		g.Expect(jsonUnmarshal(raw, &rep)).To(Succeed())
		return rep, raw
	}
	rep, raw := query(g)
	g.Expect(rep.Info).To(HaveLen(1))
	g.Expect(rep.Info[0].AppInfo.Memo).To(Equal("管理员: " + inst.Name))
	g.Expect(string(raw)).To(ContainSubstring(`\u7ba1\u7406\u5458`), "non-ASCII is sent as \\uXXXX")

	g.Expect(code(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Eventually(func(g Gomega) {
		rep, _ := query(g)
		g.Expect(rep.ResultCode).To(Equal(koogallery.ResultSuccess))
		g.Expect(rep.Info).To(HaveLen(1))
		g.Expect(rep.Info[0].AppInfo).NotTo(BeNil(), "a frozen instance still shows the buyer what they bought")
		g.Expect(rep.Info[0].AppInfo.FrontEndURL).NotTo(BeEmpty())
		g.Expect(rep.Info[0].AppInfo.UserName).NotTo(BeEmpty())
		g.Expect(meta.IsStatusConditionTrue(getInstance(g, inst.Name).Status.Conditions, saasv1alpha1.ConditionFrozen)).To(BeTrue())
	}).WithTimeout(20 * time.Second).Should(Succeed())
}
