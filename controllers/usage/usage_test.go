package usage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

const interval = 2 * time.Second

// A tenant billed per hour of service runs for a few periods, is frozen for at least one whole
// period, unfrozen, and released: KooGallery received one record for each period it ran, with
// the hours it ran, each once, and a last one ending at the release.
func TestRunningTimeLifecycle(t *testing.T) {
	startOperator(t, interval, nil)
	inst := order(t, onDemandProduct, onDemandSKU)
	create(t, inst)
	t0 := readySince(waitReady(t, inst.Name))
	u := pushedUntil(t, inst.Name, t0.Add(2*interval))
	if !u.StartTime.Time.Equal(t0) {
		t.Fatalf("metering started at %v, the tenant became Ready at %v", u.StartTime, t0)
	}

	setState(t, inst.Name, saasv1alpha1.StateFrozen)
	var t1 time.Time
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, saasv1alpha1.ConditionFrozen)).To(BeTrue())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, saasv1alpha1.ConditionReady)).To(BeFalse())
		t1 = readySince(got)
	}).WithTimeout(15 * time.Second).Should(Succeed())
	frozenPeriodEnd := t1.Truncate(interval).Add(2 * interval)
	pushedUntil(t, inst.Name, frozenPeriodEnd)

	setState(t, inst.Name, saasv1alpha1.StateActive)
	t2 := readySince(waitReady(t, inst.Name))
	pushedUntil(t, inst.Name, t2.Add(2*interval))
	t3 := release(t, inst.Name)

	spans := []span{{t0, t1}, {t2, t3}}
	want := wantRecords(inst.Spec.InstanceID, spans, t0, t3, interval)
	got := received(inst.Spec.InstanceID)
	g := NewWithT(t)
	g.Expect(got).To(Equal(want))
	for _, r := range got {
		g.Expect(r.BeginTime.Before(frozenPeriodEnd) && r.EndTime.After(frozenPeriodEnd.Add(-interval))).To(BeFalse(),
			"a record %v-%v covers the period the tenant was frozen", r.BeginTime, r.EndTime)
	}
	iu := koo.InstanceUsage(inst.Spec.InstanceID)
	g.Expect(iu.Duplicates+iu.Conflicts+iu.Overlaps).To(BeZero(), "%+v", iu)
	g.Expect(koo.UsageStats().Refused).To(BeEmpty())
	t.Logf("%d records, %.4f hours over %v running", len(got), iu.Total, t1.Sub(t0)+t3.Sub(t2))
}

// A push whose answer is lost is sent again with the same metering_sn: KooGallery counts it as a
// duplicate, bills it once, and the ledger moves on.
func TestLostAnswerIsResentOnce(t *testing.T) {
	startOperator(t, interval, nil)
	inst := order(t, onDemandProduct, onDemandSKU)
	create(t, inst)
	koo.LoseUsageAnswers(1)
	t0 := readySince(waitReady(t, inst.Name))
	u := pushedUntil(t, inst.Name, t0.Add(3*interval))

	until := u.PushedUntil.UTC()
	g := NewWithT(t)
	g.Expect(received(inst.Spec.InstanceID)).To(Equal(wantRecords(inst.Spec.InstanceID, []span{{t0, until}}, t0, until, interval)))
	iu := koo.InstanceUsage(inst.Spec.InstanceID)
	g.Expect(iu.Duplicates).To(Equal(1), "%+v", iu)
	g.Expect(iu.Conflicts+iu.Overlaps).To(BeZero(), "%+v", iu)
}

// While the manager is down, periods end unpushed; one was written to the ledger and never
// acknowledged (KooGallery failed), which the periods-behind gauge shows. The next manager sends
// that one again with the same metering_sn and values, and every period missed in between, each
// once.
func TestDownAndBack(t *testing.T) {
	failing := pusherFunc(func(context.Context, []openapi.UsageRecord) error { return errors.New("KooGallery is down") })
	stop := startOperator(t, interval, failing)
	inst := order(t, onDemandProduct, onDemandSKU)
	create(t, inst)
	t0 := readySince(waitReady(t, inst.Name))
	NewWithT(t).Eventually(func(g Gomega) {
		u := get(g, inst.Name).Status.Usage
		g.Expect(u).NotTo(BeNil())
		g.Expect(u.Pending).NotTo(BeEmpty())
		g.Expect(u.Failures).To(BeNumerically(">", 0))
		g.Expect(u.LastError).To(ContainSubstring("KooGallery is down"))
		g.Expect(periodsBehind(g)).To(BeNumerically(">", 0), "failing pushes show as periods behind (MarketplaceUsagePushFailing)")
	}).WithTimeout(20 * time.Second).Should(Succeed())
	stop()
	down := time.Now()
	time.Sleep(3 * interval) // the manager is down for three periods: nothing to await

	startOperator(t, interval, nil)
	u := pushedUntil(t, inst.Name, down.Add(3*interval).Truncate(interval))
	until := u.PushedUntil.UTC()
	g := NewWithT(t)
	g.Expect(received(inst.Spec.InstanceID)).To(Equal(wantRecords(inst.Spec.InstanceID, []span{{t0, until}}, t0, until, interval)))
	iu := koo.InstanceUsage(inst.Spec.InstanceID)
	g.Expect(iu.Duplicates+iu.Conflicts+iu.Overlaps).To(BeZero(), "%+v", iu)
	g.Expect(u.Failures).To(BeZero())
	g.Expect(u.LastError).To(BeEmpty())
	g.Eventually(periodsBehind).Should(BeZero(), "acknowledged periods are not behind")
}
