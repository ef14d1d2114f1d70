package usage_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The usage ledger is written once per period per tenant: those writes must not start a pass of
// the instance controller, which owns the rest of status.
func TestUsageWritesDoNotWakeTheInstanceController(t *testing.T) {
	startOperator(t, time.Hour, nil)
	inst := order(t, onDemandProduct, onDemandSKU)
	create(t, inst)
	waitReady(t, inst.Name)
	g := NewWithT(t)
	g.Eventually(func(g Gomega) { g.Expect(get(g, inst.Name).Status.Usage).NotTo(BeNil()) }).WithTimeout(10 * time.Second).Should(Succeed())
	var settled float64
	g.Eventually(func(g Gomega) {
		before := instanceReconciles(g)
		g.Consistently(func(g Gomega) { g.Expect(instanceReconciles(g)).To(Equal(before)) }).
			WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
		settled = before
	}).WithTimeout(20 * time.Second).Should(Succeed())

	for i := range 3 {
		cur := get(g, inst.Name)
		p := client.MergeFrom(cur.DeepCopy())
		cur.Status.Usage.LastError = "a write of the usage ledger alone " + string(rune('a'+i))
		g.Expect(k8s.Status().Patch(context.Background(), cur, p)).To(Succeed())
	}
	g.Consistently(func(g Gomega) { g.Expect(instanceReconciles(g)).To(Equal(settled)) }).
		WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}
