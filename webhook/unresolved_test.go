package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// TestUnresolvedOrdersAreCountedAndCapped: instances whose order never resolves (here: orders
// Query Order does not know) show in marketplace_unresolved_instances by reason, with the age of
// the oldest; and once --marketplace-max-unresolved-instances of them exist, newInstance refuses
// to create more (000005, nothing created) while still answering the instances that exist.
func TestUnresolvedOrdersAreCountedAndCapped(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	var ours []string
	for range 2 {
		ours = append(ours, createUnresolvable(t, g, endpoint))
	}
	for _, name := range ours {
		g.Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(getInstance(g, name).Status.Conditions, saasv1alpha1.ConditionOrderResolved)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(saasv1alpha1.ReasonQueryFailed))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	}

	// The gauge, read through the registry the manager serves, agrees with the API server.
	g.Eventually(func(g Gomega) {
		want := unresolvedByReason(g)
		g.Expect(want[saasv1alpha1.ReasonQueryFailed]).To(BeNumerically(">=", 2))
		for _, reason := range gaugeReasons {
			g.Expect(gathered(g, "marketplace_unresolved_instances", reason)).To(Equal(float64(want[reason])), "reason %s", reason)
		}
		g.Expect(gathered(g, "marketplace_unresolved_instance_oldest_seconds", saasv1alpha1.ReasonQueryFailed)).To(BeNumerically(">", 0))
	}).WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

	// A replica capped at the number that count against the limit now. If some of them go
	// meanwhile (other tests' leftovers being released), creates succeed until the count is back
	// at the limit: every attempt is cleaned up, and the refusal must come.
	limited := unresolvedByReason(g)
	limit := limited[saasv1alpha1.ReasonQueryFailed] + limited[saasv1alpha1.ReasonOrderNotFound]
	addr := startReplica(t, replicaConfig{Config: env.ManagerConfig, KeysDir: suiteKeyDir(t),
		Options: webhook.Options{MaxUnresolvedInstances: limit}})
	replica := "http://" + addr + webhook.DefaultPath
	refusalsBefore := gathered(g, "marketplace_unresolved_limit_refusals_total", "")
	var refused string
	g.Eventually(func(g Gomega) {
		orderID, lineID := unknownOrder()
		name := webhook.InstanceName(lineID)
		rep := sendTo(g, replica, &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: businessID()})
		if rep.ResultCode != koogallery.ResultInternalError {
			t.Cleanup(func() { release(name) })
			g.Expect(rep.ResultCode).To(Equal(koogallery.ResultProcessing), rep.ResultMsg)
		}
		g.Expect(rep.ResultCode).To(Equal(koogallery.ResultInternalError))
		g.Expect(rep.ResultMsg).To(ContainSubstring("retry later"))
		refused = name
	}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	err := k8s.Get(ctx, client.ObjectKey{Name: refused}, &saasv1alpha1.MarketplaceInstance{})
	g.Expect(err).To(HaveOccurred(), "a refused newInstance created its instance")
	g.Expect(gathered(g, "marketplace_unresolved_limit_refusals_total", "")).To(BeNumerically(">", refusalsBefore))

	// KooGallery's retry of an instance that exists is answered from it, not refused.
	existing := getInstance(g, ours[0])
	rep := sendTo(g, replica, &koogallery.NewInstanceRequest{OrderID: existing.Spec.Order.OrderID,
		OrderLineID: existing.Spec.Order.OrderLineID, BusinessID: businessID()})
	g.Expect(rep.ResultCode).To(Equal(koogallery.ResultProcessing), rep.ResultMsg)
	g.Expect(rep.InstanceID).To(Equal(existing.Spec.InstanceID))
}

// gaugeReasons are the values of the unresolved gauge's reason label.
var gaugeReasons = []string{"Pending", saasv1alpha1.ReasonQueryFailed, saasv1alpha1.ReasonOrderNotFound,
	saasv1alpha1.ReasonUnknownSKU, saasv1alpha1.ReasonAmbiguousPlan, saasv1alpha1.ReasonPlanNotFound, "Other"}

// createUnresolvable creates, through the endpoint at url, the instance of an order line Query
// Order does not know, and returns its name.
func createUnresolvable(t *testing.T, g Gomega, url string) string {
	t.Helper()
	orderID, lineID := unknownOrder()
	name := webhook.InstanceName(lineID)
	t.Cleanup(func() { release(name) })
	rep := sendTo(g, url, &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: businessID()})
	g.Expect(rep.ResultCode).To(Equal(koogallery.ResultProcessing), rep.ResultMsg)
	return name
}

// unknownOrder is an order line nobody registered with Query Order.
func unknownOrder() (orderID, lineID string) {
	orderID = fmt.Sprintf("CSUNRESOLVED%s%04d", time.Now().UTC().Format("060102150405"), orderSeq.Add(1))
	return orderID, orderID + "-000001"
}

// sendTo signs a newInstance call now with the basic key and posts it to url.
func sendTo(g Gomega, url string, req *koogallery.NewInstanceRequest) koogallery.NewInstanceReply {
	body, err := koogallery.MarshalRequest(req)
	g.Expect(err).NotTo(HaveOccurred())
	q := koogallery.BasicQuery(basicKey, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	raw := postRaw(g, url+"?"+q.Encode(), nil, body)
	var rep koogallery.NewInstanceReply
	g.Expect(json.Unmarshal(raw, &rep)).To(Succeed(), "reply %s", raw)
	return rep
}

// unresolvedByReason counts, from the API server, the instances not being deleted whose
// OrderResolved condition is not True, by the gauge's reason label.
func unresolvedByReason(g Gomega) map[string]int {
	list := &saasv1alpha1.MarketplaceInstanceList{}
	g.Expect(k8s.List(context.Background(), list)).To(Succeed())
	out := map[string]int{}
	for _, inst := range list.Items {
		if inst.DeletionTimestamp != nil {
			continue
		}
		c := meta.FindStatusCondition(inst.Status.Conditions, saasv1alpha1.ConditionOrderResolved)
		switch {
		case c == nil || c.Status == "Unknown":
			out["Pending"]++
		case c.Status == "False" && slices.Contains(gaugeReasons, c.Reason):
			out[c.Reason]++
		case c.Status == "False":
			out["Other"]++
		}
	}
	return out
}

// gathered reads a gauge or counter from the registry the manager's metrics endpoint serves:
// the sample with the reason label, or the unlabelled one when reason is empty. A metric that is
// not there fails.
func gathered(g Gomega, name, reason string) float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					label = l.GetValue()
				}
			}
			if label != reason {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	g.Expect(false).To(BeTrue(), "metric %s{reason=%q} not gathered", name, reason)
	return 0
}
