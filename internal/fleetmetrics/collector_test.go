package fleetmetrics_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/fleetmetrics"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

func cond(t, status, reason string) metav1.Condition {
	return metav1.Condition{Type: t, Status: metav1.ConditionStatus(status), Reason: reason, Message: reason,
		LastTransitionTime: metav1.Now()}
}

// fleet is one instance per case: its status, and the labels it must be counted under.
var fleet = []struct {
	name          string
	status        saasv1alpha1.MarketplaceInstanceStatus
	phase, reason string
}{
	{name: "fresh", phase: "Pending", reason: "Pending"},
	{name: "query-down", phase: "Pending", reason: saasv1alpha1.ReasonQueryFailed, status: saasv1alpha1.MarketplaceInstanceStatus{
		Phase: "Pending", Conditions: []metav1.Condition{
			cond(saasv1alpha1.ConditionOrderResolved, "False", saasv1alpha1.ReasonQueryFailed),
			cond(saasv1alpha1.ConditionReady, "False", saasv1alpha1.ReasonQueryFailed),
		}}},
	{name: "unknown-sku", phase: "Failed", reason: saasv1alpha1.ReasonUnknownSKU, status: saasv1alpha1.MarketplaceInstanceStatus{
		Phase: "Failed", Conditions: []metav1.Condition{
			cond(saasv1alpha1.ConditionOrderResolved, "False", saasv1alpha1.ReasonUnknownSKU),
			cond(saasv1alpha1.ConditionReady, "False", saasv1alpha1.ReasonUnknownSKU),
		}}},
	{name: "serving", phase: "Ready", reason: saasv1alpha1.ReasonAvailable, status: saasv1alpha1.MarketplaceInstanceStatus{
		Phase: "Ready", Conditions: []metav1.Condition{
			cond(saasv1alpha1.ConditionReady, "True", saasv1alpha1.ReasonAvailable),
			cond(saasv1alpha1.ConditionDegraded, "False", saasv1alpha1.ReasonAvailable),
		}}},
	{name: "downgrade-refused", phase: "Ready", reason: saasv1alpha1.ReasonDowngradeRefused, status: saasv1alpha1.MarketplaceInstanceStatus{
		Phase: "Ready", Conditions: []metav1.Condition{
			cond(saasv1alpha1.ConditionReady, "True", saasv1alpha1.ReasonAvailable),
			cond(saasv1alpha1.ConditionDegraded, "True", saasv1alpha1.ReasonDowngradeRefused),
		}}},
	{name: "from-the-future", phase: fleetmetrics.Other, reason: fleetmetrics.Other, status: saasv1alpha1.MarketplaceInstanceStatus{
		Phase: "Hibernating", Conditions: []metav1.Condition{
			cond(saasv1alpha1.ConditionReady, "False", "SomethingNew"),
		}}},
}

func TestClassify(t *testing.T) {
	for _, tc := range fleet {
		inst := &saasv1alpha1.MarketplaceInstance{Status: tc.status}
		if p, r := fleetmetrics.Classify(inst); p != tc.phase || r != tc.reason {
			t.Errorf("%s: classified as %s/%s, want %s/%s", tc.name, p, r, tc.phase, tc.reason)
		}
	}
}

func TestLabelsBounded(t *testing.T) {
	g := NewWithT(t)
	g.Expect(fleetmetrics.Phases).To(ContainElement(fleetmetrics.Other))
	g.Expect(fleetmetrics.Reasons).To(ContainElements(fleetmetrics.Other, fleetmetrics.Pending))
	g.Expect(len(fleetmetrics.Phases) * len(fleetmetrics.Reasons)).To(BeNumerically("<=", 300))
}

// gather returns the gauge's values by phase/reason.
func gather(g Gomega, reg *prometheus.Registry) map[string]float64 {
	mfs, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != fleetmetrics.MetricName {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out[l["phase"]+"/"+l["reason"]] = m.GetGauge().GetValue()
		}
	}
	return out
}

// The gauge counts the instances of the manager's cache (with the manager's own cache
// transforms) by phase and reason, and follows their status.
func TestCollectorCountsTheCache(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	opts := managercache.Options()
	opts.Scheme = env.Scheme
	c, err := cache.New(env.Config, opts)
	g.Expect(err).NotTo(HaveOccurred())
	reg := prometheus.NewRegistry()
	g.Expect(reg.Register(fleetmetrics.New(c))).To(Succeed())

	// Before the cache starts, nothing is reported rather than an empty fleet.
	g.Expect(gather(g, reg)).To(BeEmpty())
	go func() {
		if err := c.Start(ctx); err != nil {
			t.Error(err)
		}
	}()

	want := map[string]float64{}
	for _, tc := range fleet {
		inst := &saasv1alpha1.MarketplaceInstance{
			ObjectMeta: metav1.ObjectMeta{Name: tc.name},
			Spec: saasv1alpha1.MarketplaceInstanceSpec{
				InstanceID: "id-" + tc.name,
				Order:      saasv1alpha1.OrderReference{OrderID: "CS" + tc.name, OrderLineID: "CS" + tc.name + "-1"},
				State:      saasv1alpha1.StateActive,
			},
		}
		g.Expect(env.Client.Create(ctx, inst)).To(Succeed())
		if tc.status.Phase != "" {
			inst.Status = tc.status
			g.Expect(env.Client.Status().Update(ctx, inst)).To(Succeed())
		}
		want[tc.phase+"/"+tc.reason]++
	}
	g.Eventually(func(g Gomega) {
		g.Expect(gather(g, reg)).To(Equal(want))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// The refused downgrade is resolved: the instance moves to Ready/Available.
	inst := &saasv1alpha1.MarketplaceInstance{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Name: "downgrade-refused"}, inst)).To(Succeed())
	inst.Status.Conditions[1].Status = metav1.ConditionFalse
	inst.Status.Conditions[1].Reason = saasv1alpha1.ReasonResolved
	g.Expect(env.Client.Status().Update(ctx, inst)).To(Succeed())
	delete(want, "Ready/"+saasv1alpha1.ReasonDowngradeRefused)
	want["Ready/"+saasv1alpha1.ReasonAvailable]++
	g.Eventually(func(g Gomega) {
		g.Expect(gather(g, reg)).To(Equal(want))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}
