package webhook_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// 20 concurrent duplicates of one newInstance, each with its own businessId, make one instance;
// every answer carries its instance ID. KooGallery's create then polls queryInstance from
// 000004 to 000000 with appInfo once the tenant is ready.
func TestNewInstanceConcurrentDuplicatesThenPollToReady(t *testing.T) {
	g := NewWithT(t)
	orderID, lineID := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	name := webhook.InstanceName(lineID)
	t.Cleanup(func() { release(name) })

	replies := make([]koogallery.NewInstanceReply, 20)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(NewWithT(t), &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: businessID()}, &replies[i])
		}()
	}
	wg.Wait()
	inst := getInstance(g, name)
	for i, r := range replies {
		g.Expect(r.ResultCode).To(Equal(koogallery.ResultProcessing), "reply %d", i)
		g.Expect(r.InstanceID).To(Equal(inst.Spec.InstanceID), "reply %d", i)
	}
	g.Expect(instancesOfOrder(g, orderID)).To(Equal(1))
	// The reply waited for the create alone; the reconciler's first status write records the
	// call that made the instance, once.
	g.Eventually(func(g Gomega) {
		h := getInstance(g, name).Status.History
		g.Expect(h).To(HaveLen(1))
		g.Expect(h[0].Activity).To(Equal(koogallery.ActivityNewInstance))
		g.Expect(h[0].OrderID).To(Equal(orderID))
		g.Expect(h[0].Result).To(Equal(koogallery.ResultProcessing))
		g.Expect(h[0].RequestTimestamp).To(BeNumerically(">", 0))
	}).Should(Succeed())

	// KooGallery's create: 000004, then polls until appInfo. The test plays kcm meanwhile.
	var created *simulator.CreateResult
	var createErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		created, createErr = sim.NewInstance(context.Background(), koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: businessID()})
	}()
	inst = waitReady(t, name)
	<-done
	g.Expect(createErr).NotTo(HaveOccurred())
	g.Expect(created.InstanceID).To(Equal(inst.Spec.InstanceID))
	g.Expect(created.CreateCode).To(Equal(koogallery.ResultProcessing))
	g.Expect(created.Final.ResultCode).To(Equal(koogallery.ResultSuccess))
	secret := &corev1.Secret{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: inst.Status.Namespace, Name: render.CredentialsSecretName}, secret)).To(Succeed())
	g.Expect(*created.Info.AppInfo).To(Equal(koogallery.AppInfo{
		FrontEndURL: inst.Status.AppInfo.FrontEndURL, AdminURL: inst.Status.AppInfo.AdminURL,
		UserName: string(secret.Data[render.CredentialsUserNameKey]), Password: string(secret.Data[render.CredentialsPasswordKey]),
	}))
	g.Expect(created.Info.AppInfo.Password).NotTo(BeEmpty())

	// Ready now: a repeated create answers 000000 at once with the same ID.
	var again koogallery.NewInstanceReply
	send(g, &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: businessID()}, &again)
	g.Expect(again.ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(again.InstanceID).To(Equal(inst.Spec.InstanceID))
}

func TestQueryInstanceBatch(t *testing.T) {
	g := NewWithT(t)
	ready, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	orderID, lineID := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	pendingID := businessID()
	t.Cleanup(func() { release(webhook.InstanceName(lineID)) })
	g.Expect(code(g, &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: pendingID}).ResultCode).To(Equal(koogallery.ResultProcessing))

	// A single instance still provisioning: 000004 (right after the create: the live fallback
	// finds it even if the cache has not caught up).
	g.Expect(code(g, &koogallery.QueryInstanceRequest{InstanceID: pendingID}).ResultCode).To(Equal(koogallery.ResultProcessing))
	// A batch: 000000 with an entry per existing instance, appInfo only for the Ready one.
	var rep koogallery.QueryInstanceReply
	send(g, &koogallery.QueryInstanceRequest{InstanceID: ready.Spec.InstanceID + ",nope-1," + pendingID}, &rep)
	g.Expect(rep.ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(rep.Info).To(HaveLen(2))
	g.Expect(rep.Info[0].InstanceID).To(Equal(ready.Spec.InstanceID))
	g.Expect(rep.Info[0].AppInfo).NotTo(BeNil())
	g.Expect(rep.Info[1].InstanceID).To(Equal(pendingID))
	g.Expect(rep.Info[1].AppInfo).To(BeNil())
	// None exists: 000003. More than 100: 000002.
	g.Expect(code(g, &koogallery.QueryInstanceRequest{InstanceID: "nope-1,nope-2"}).ResultCode).To(Equal(koogallery.ResultInstanceNotFound))
	g.Expect(code(g, &koogallery.QueryInstanceRequest{InstanceID: strings.Repeat("x,", 100) + "x"}).ResultCode).To(Equal(koogallery.ResultInvalidParam))
}

// Every lifecycle activity against one instance: refresh in all four scenes, freeze and unfreeze
// reflected in the Deployment, a delayed older FREEZE ignored, upgrade (repeated), the change
// check, orderNotify, and release (twice, then once more after it is gone).
func TestLifecycleActivities(t *testing.T) {
	g := NewWithT(t)
	inst, orderID := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id, name, ns := inst.Spec.InstanceID, inst.Name, inst.Status.Namespace

	// refreshInstance, all four scenes.
	year := time.Now().UTC().AddDate(1, 0, 0).Truncate(time.Second)
	renewID, renewLine := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	g.Expect(code(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: renewID, OrderLineID: renewLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(year)}).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(getInstance(g, name).Spec.ExpireTime.Time.Equal(year)).To(BeTrue())
	g.Expect(getInstance(g, name).Spec.CurrentOrder).To(BeNil())

	month := time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Millisecond)
	g.Expect(code(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneUnsubscribeRenewalPeriod, OrderID: renewID, OrderLineID: renewLine,
		InstanceID: id, ExpireTime: koogallery.FormatStatisticalTime(month)}).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(getInstance(g, name).Spec.ExpireTime.Time.Unix()).To(Equal(month.Unix()), "17-digit expireTime moves expiry earlier")

	formalID, formalLine := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	g.Expect(code(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneTrialToFormal, OrderID: formalID, OrderLineID: formalLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(year)}).ResultCode).To(BeElementOf(koogallery.ResultSuccess, koogallery.ResultProcessing))
	g.Expect(getInstance(g, name).Spec.CurrentOrder).To(Equal(&saasv1alpha1.ChangeOrder{OrderID: formalID, OrderLineID: formalLine}))

	changeID, changeLine := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	g.Expect(code(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewalChange, OrderID: changeID, OrderLineID: changeLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(year)}).ResultCode).To(BeElementOf(koogallery.ResultSuccess, koogallery.ResultProcessing))
	g.Expect(getInstance(g, name).Spec.CurrentOrder.OrderID).To(Equal(changeID))
	waitReady(t, name)

	// FREEZE and UNFREEZE reach the workload.
	replicas := func(g Gomega) int32 {
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		return ptrVal(d.Spec.Replicas)
	}
	g.Expect(code(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Eventually(replicas).WithTimeout(20 * time.Second).Should(Equal(int32(0)))
	var q koogallery.QueryInstanceReply
	send(g, &koogallery.QueryInstanceRequest{InstanceID: id}, &q)
	g.Expect(q.ResultCode).To(Equal(koogallery.ResultSuccess), "a frozen instance is not provisioning")
	g.Expect(q.Info[0].AppInfo).NotTo(BeNil(), "a frozen instance still shows the buyer what they bought")

	unfreezeAt := time.Now()
	var r koogallery.Reply
	sendAt(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusUnfreeze}, unfreezeAt, &r)
	g.Expect(r.ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Eventually(replicas).WithTimeout(20 * time.Second).Should(Equal(int32(1)))

	// A FREEZE signed before the UNFREEZE arrives late: acknowledged, recorded, ignored.
	sendAt(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}, unfreezeAt.Add(-5*time.Second), &r)
	g.Expect(r.ResultCode).To(Equal(koogallery.ResultSuccess))
	cur := getInstance(g, name)
	g.Expect(cur.Spec.State).To(Equal(saasv1alpha1.StateActive))
	g.Expect(historyOf(cur)).To(ContainElement("updateInstanceStatus: FREEZE (ignored: older than the last applied call)"))
	g.Consistently(replicas).WithTimeout(500 * time.Millisecond).Should(Equal(int32(1)))
	waitReady(t, name)

	// changeInstanceCheck: the pro SKU fits; an unknown SKU is refused; a downgrade that does not
	// fit the usage is refused with the shortfall (envtest has no quota controller: we set usage).
	check := func(product, sku string) koogallery.Reply {
		return code(g, &koogallery.ChangeInstanceCheckRequest{InstanceID: id,
			ProductInfo: koogallery.ProductInfo{ProductID: product, SKUCode: sku, ProductName: "demo"}})
	}
	g.Expect(check(testenv.ProProduct, testenv.ProSKU).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(check("OFFI-unknown", "nope").ResultCode).To(Equal(koogallery.ResultNoResource))

	// upgradeInstance to the pro SKU: answered 000004 (KooGallery calls again) until the tenant
	// runs the pro plan, then 000000; the same order again is not re-applied.
	upID, upLine := newOrder(testenv.ProProduct, testenv.ProSKU)
	upgrade := &koogallery.UpgradeInstanceRequest{InstanceID: id, OrderID: upID, OrderLineID: upLine}
	g.Expect(code(g, upgrade).ResultCode).To(BeElementOf(koogallery.ResultSuccess, koogallery.ResultProcessing))
	before := len(recordedCalls(getInstance(g, name)))
	g.Eventually(func(g Gomega) string { return code(g, upgrade).ResultCode }).WithTimeout(20 * time.Second).Should(Equal(koogallery.ResultSuccess))
	g.Expect(getInstance(g, name).Status.Plan).To(Equal(testenv.ProPlan))
	g.Expect(recordedCalls(getInstance(g, name))).To(HaveLen(before))
	g.Expect(getInstance(g, name).Spec.CurrentOrder.OrderID).To(Equal(upID))

	setQuotaUsed(g, ns, corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("3")})
	down := check(testenv.BasicProduct, testenv.BasicSKU)
	g.Expect(down.ResultCode).To(Equal(koogallery.ResultNoResource))
	g.Expect(down.ResultMsg).To(ContainSubstring("requests.cpu: used 3, plan allows 1"))

	// orderNotify for the instance's order lands in its history.
	g.Expect(code(g, &koogallery.OrderNotifyRequest{OrderID: upID, OrderLineID: upLine, TestFlag: koogallery.TestFlagProduction}).ResultCode).To(Equal(koogallery.ResultSuccess))
	// An order Query Order does not know (yet) is answered 000005: KooGallery notifies again.
	g.Expect(code(g, &koogallery.OrderNotifyRequest{OrderID: "CSUNKNOWN", OrderLineID: "CSUNKNOWN-1", TestFlag: koogallery.TestFlagProduction}).ResultCode).To(Equal(koogallery.ResultInternalError))
	cur = getInstance(g, name)
	g.Expect(historyOf(cur)[len(recordedCalls(cur))-1]).To(HavePrefix("orderNotify: order notification: NEW, line "+upLine+", PERIOD, SKU "+testenv.ProSKU),
		"what Query Order said of the notified order is recorded")
	for _, op := range recordedCalls(cur) {
		g.Expect(op.RequestTimestamp).To(BeNumerically(">", 0))
		want := koogallery.ResultSuccess
		if op.Activity == koogallery.ActivityNewInstance {
			want = koogallery.ResultProcessing // what a new instance is answered
		}
		g.Expect(op.Result).To(Equal(want), "%+v", op)
	}
	g.Expect(cur.Spec.Order.OrderID).To(Equal(orderID))

	// releaseInstance: the finalizer-driven release starts; a second release succeeds too.
	g.Expect(code(g, &koogallery.ReleaseInstanceRequest{InstanceID: id}).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(getInstance(g, name).DeletionTimestamp).NotTo(BeNil())
	g.Expect(code(g, &koogallery.ReleaseInstanceRequest{InstanceID: id}).ResultCode).To(Equal(koogallery.ResultSuccess))
	// A late FREEZE on a releasing instance is acknowledged and changes nothing.
	g.Expect(code(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}).ResultCode).To(Equal(koogallery.ResultSuccess))
	// The pro plan backs up before release: play the Job controller, then the namespace controller.
	g.Eventually(func() error {
		return testenv.CompleteJob(context.Background(), k8s, ns, render.BackupJobName)
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Eventually(func() error { return env.FinalizeNamespace(context.Background(), ns) }).WithTimeout(20 * time.Second).Should(Succeed())
	g.Eventually(func() bool {
		err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, &saasv1alpha1.MarketplaceInstance{})
		return client.IgnoreNotFound(err) == nil && err != nil
	}).WithTimeout(20 * time.Second).Should(BeTrue())
	g.Expect(code(g, &koogallery.ReleaseInstanceRequest{InstanceID: id}).ResultCode).To(Equal(koogallery.ResultSuccess))

	// Unknown instances: 000003 for refresh, status and upgrade (once the manager's cache,
	// which the webhook reads, has seen the deletion too).
	g.Eventually(func(g Gomega) string {
		return code(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: renewID, OrderLineID: renewLine,
			InstanceID: id, ExpireTime: koogallery.FormatExpireTime(year)}).ResultCode
	}).WithTimeout(10 * time.Second).Should(Equal(koogallery.ResultInstanceNotFound))
	g.Expect(code(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}).ResultCode).To(Equal(koogallery.ResultInstanceNotFound))
	g.Expect(code(g, &koogallery.UpgradeInstanceRequest{InstanceID: id, OrderID: upID, OrderLineID: upLine}).ResultCode).To(Equal(koogallery.ResultInstanceNotFound))
}

func ptrVal(p *int32) int32 {
	if p == nil {
		return -1
	}
	return *p
}

// setQuotaUsed sets a tenant's usage, which the webhook reads from the API server (the
// manager's cache holds none).
func setQuotaUsed(g Gomega, ns string, used corev1.ResourceList) {
	g.Eventually(func() error {
		return testenv.SetQuotaUsed(context.Background(), k8s, ns, used)
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// Concurrent calls on one instance (as from several replicas) all land in its history.
func TestConcurrentCallsAllRecorded(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	before := len(recordedCalls(inst))
	const n = 8
	var wg sync.WaitGroup
	base := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r koogallery.Reply
			sendAt(NewWithT(t), &koogallery.UpdateInstanceStatusRequest{InstanceID: inst.Spec.InstanceID, Status: koogallery.StatusUnfreeze},
				base.Add(time.Duration(i)*time.Millisecond), &r)
			NewWithT(t).Expect(r.ResultCode).To(Equal(koogallery.ResultSuccess))
		}()
	}
	wg.Wait()
	cur := getInstance(g, inst.Name)
	g.Expect(recordedCalls(cur)).To(HaveLen(before + n))
	g.Expect(cur.Annotations[webhook.AnnotationLastCallPrefix+"state"]).To(Equal(koogallery.Timestamp(base.Add((n - 1) * time.Millisecond))))
}

// A call is recorded at once, in the write that applies it, and reaches status.history through
// the reconciler, also on an instance whose changes are paused.
func TestCallOnAPausedInstanceReachesHistory(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	inst := &saasv1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "no-status-yet", Annotations: map[string]string{saasv1alpha1.AnnotationPaused: "true"}},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{InstanceID: "no-status-yet",
			Order: saasv1alpha1.OrderReference{OrderID: "CSNOSTATUS", OrderLineID: "CSNOSTATUS-000001"}, State: saasv1alpha1.StateActive},
	}
	g.Expect(k8s.Create(ctx, inst)).To(Succeed())
	t.Cleanup(func() { release(inst.Name) })
	g.Expect(server.Record(ctx, inst, koogallery.ActivityOrderNotify, time.Now())).To(Succeed())
	g.Expect(saasv1alpha1.PendingCalls(getInstance(g, inst.Name))).To(ConsistOf(HaveField("Activity", koogallery.ActivityOrderNotify)))
	g.Eventually(func(g Gomega) []saasv1alpha1.Operation { return getInstance(g, inst.Name).Status.History }).
		WithTimeout(10 * time.Second).Should(ConsistOf(HaveField("Activity", koogallery.ActivityOrderNotify)))
}

// The history keeps the newest MaxHistory calls, in the order they were applied.
func TestHistoryBounded(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	base := time.Now()
	const n = saasv1alpha1.MaxHistory + 3
	for i := range n {
		status := koogallery.StatusFreeze
		if i%2 == 1 {
			status = koogallery.StatusUnfreeze
		}
		var r koogallery.Reply
		sendAt(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: inst.Spec.InstanceID, Status: status},
			base.Add(time.Duration(i)*time.Millisecond), &r)
		g.Expect(r.ResultCode).To(Equal(koogallery.ResultSuccess))
	}
	var h []saasv1alpha1.Operation
	g.Eventually(func(g Gomega) {
		h = getInstance(g, inst.Name).Status.History
		g.Expect(h).To(HaveLen(saasv1alpha1.MaxHistory))
		g.Expect(h[len(h)-1].RequestTimestamp).To(Equal(base.Add((n - 1) * time.Millisecond).UnixMilli()))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(h[len(h)-1].Activity).To(Equal(koogallery.ActivityUpdateInstanceStatus))
}

// Debug calls (testFlag=1) are verified and answered truthfully but create nothing: a whole
// debug lifecycle against the MOCK orders, as KooGallery's daily dial-test runs it.
func TestDebugCallsCreateNothing(t *testing.T) {
	g := NewWithT(t)
	steps, err := sim.Lifecycle(context.Background(), simulator.LifecycleOptions{Test: true})
	g.Expect(err).NotTo(HaveOccurred(), "steps %+v", steps)
	g.Expect(steps).To(HaveLen(7))
	g.Expect(steps[0].ResultCode).To(Equal(koogallery.ResultSuccess))
	// Other tests run their instances meanwhile, so "nothing" is checked by order, not by count.
	list := &saasv1alpha1.MarketplaceInstanceList{}
	g.Expect(k8s.List(context.Background(), list)).To(Succeed())
	for _, it := range list.Items {
		g.Expect(it.Spec.Order.OrderID).NotTo(HavePrefix("MOCK"))
	}

	// Truthful: an order Query Order does not know is refused; an unknown instance is 000003.
	var rep koogallery.NewInstanceReply
	send(g, &koogallery.NewInstanceRequest{OrderID: "MOCKNOSUCHORDER", OrderLineID: "MOCKNOSUCHORDER-000001", BusinessID: businessID(), TestFlag: koogallery.TestFlagDebug}, &rep)
	g.Expect(rep.ResultCode).To(Equal(koogallery.ResultInvalidParam))
	g.Expect(code(g, &koogallery.QueryInstanceRequest{InstanceID: "not-an-instance", TestFlag: koogallery.TestFlagDebug}).ResultCode).To(Equal(koogallery.ResultInstanceNotFound))

	// A debug call naming a real instance answers from it but never changes it.
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	g.Expect(code(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: inst.Spec.InstanceID, Status: koogallery.StatusFreeze, TestFlag: koogallery.TestFlagDebug}).ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(code(g, &koogallery.ReleaseInstanceRequest{InstanceID: inst.Spec.InstanceID, TestFlag: koogallery.TestFlagDebug}).ResultCode).To(Equal(koogallery.ResultSuccess))
	cur := getInstance(g, inst.Name)
	g.Expect(cur.Spec.State).To(Equal(saasv1alpha1.StateActive))
	g.Expect(cur.DeletionTimestamp).To(BeNil())
	g.Expect(recordedCalls(cur)).To(HaveLen(len(recordedCalls(inst))))
	var q koogallery.QueryInstanceReply
	send(g, &koogallery.QueryInstanceRequest{InstanceID: inst.Spec.InstanceID, TestFlag: koogallery.TestFlagDebug}, &q)
	g.Expect(q.ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(q.Info[0].AppInfo).NotTo(BeNil())
}

// Every way a call can fail to prove it comes from KooGallery is answered 000001; malformed and
// oversized bodies 000002 — all HTTP 200, JSON, signed.
func TestRejections(t *testing.T) {
	g := NewWithT(t)
	body, err := koogallery.MarshalRequest(&koogallery.QueryInstanceRequest{InstanceID: "nope"})
	g.Expect(err).NotTo(HaveOccurred())
	replyCode := func(raw []byte) string {
		var r koogallery.Reply
		g.Expect(jsonUnmarshal(raw, &r)).To(Succeed())
		return r.ResultCode
	}
	g.Expect(replyCode(post(g, []byte("wrong-key"), body, time.Now(), simulator.RandomNonce()))).To(Equal(koogallery.ResultAuthFailed), "wrong key")
	g.Expect(replyCode(post(g, basicKey, body, time.Now().Add(-5*time.Minute), simulator.RandomNonce()))).To(Equal(koogallery.ResultAuthFailed), "stale timestamp")
	nonce := simulator.RandomNonce()
	now := time.Now()
	g.Expect(replyCode(post(g, basicKey, body, now, nonce))).To(Equal(koogallery.ResultInstanceNotFound), "first use")
	g.Expect(replyCode(post(g, basicKey, body, now, nonce))).To(Equal(koogallery.ResultAuthFailed), "replayed nonce")
	q := koogallery.BasicQuery(basicKey, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	tampered := []byte(strings.Replace(string(body), "nope", "nopf", 1))
	g.Expect(replyCode(postRaw(g, endpoint+"?"+q.Encode(), nil, tampered))).To(Equal(koogallery.ResultAuthFailed), "tampered body")
	// Kit: the basic key does not sign kit calls.
	kitBody := []byte(`{"instanceId":"x","tenantId":"t","tenantCode":"c","name":"n","flag":0,"testFlag":0,"timeStamp":"` + koogallery.FormatKitTime(time.Now()) + `"}`)
	h := map[string][]string{}
	hdr := httpHeader(h)
	koogallery.SetKitHeaders(hdr, basicKey, kitBody, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	g.Expect(replyCode(postRaw(g, endpoint+koogallery.KitPathTenantSync, hdr, kitBody))).To(Equal(koogallery.ResultAuthFailed), "kit with basic key")

	g.Expect(replyCode(post(g, basicKey, []byte(`{"activity":"queryInstance",`), time.Now(), simulator.RandomNonce()))).To(Equal(koogallery.ResultInvalidParam), "malformed")
	g.Expect(replyCode(post(g, basicKey, []byte(`{"activity":"newInstance","orderId":"CS1"}`), time.Now(), simulator.RandomNonce()))).To(Equal(koogallery.ResultInvalidParam), "missing fields")
	big := []byte(`{"activity":"queryInstance","instanceId":"` + strings.Repeat("a", 2<<20) + `"}`)
	g.Expect(replyCode(post(g, basicKey, big, time.Now(), simulator.RandomNonce()))).To(Equal(koogallery.ResultInvalidParam), "oversized")
}
