//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// TestAPIServerRestart stops kube-apiserver under a running manager (one replica: a leader would
// give up its Lease after its renew deadline and exit, which is the kill scenarios' subject) and
// sends KooGallery's calls while it is down. Every call that needs a write is answered 000005,
// which KooGallery retries, and changes nothing; reads the cache can answer are answered. Once
// the API server is back, KooGallery's retries go through and every instance ends as asked.
func TestAPIServerRestart(t *testing.T) {
	const prefix = "apis"
	ctx, row := startScenario(t, "API server restarted", 6*time.Minute)
	g := NewWithT(t)
	op := startOperator(t, ctx, "apiserver", "")
	sim := newSimulator(t, op.MarketplaceURL)
	// probe makes single attempts, to see what one KooGallery attempt is answered.
	probe := newSimulatorWith(t, op.MarketplaceURL, []time.Duration{})
	out := &outcomes{}
	row.sims, row.out = []*simulator.Simulator{sim, probe}, out
	running, fresh := make([]*tenant, 20), make([]*tenant, 8)
	for i := range running {
		running[i] = newTenant(fmt.Sprintf("APISRUN%03d", i))
	}
	for i := range fresh {
		fresh[i] = newTenant(fmt.Sprintf("APISNEW%03d", i))
	}
	unborn := newTenant("APISPROBE")
	row.instances = len(running) + len(fresh)
	// Renewed too, so that a renewal wrongly applied during the outage would show.
	noErrors(t, "instances before the outage", eachOf(len(running), 8, func(i int) error {
		if err := running[i].create(ctx, sim, out, false); err != nil {
			return err
		}
		return running[i].renew(ctx, sim, out, time.Now().AddDate(1, 0, i))
	}))

	stopping := time.Now()
	if err := cluster.Down(ctx, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	up := false
	t.Cleanup(func() {
		if !up {
			if err := cluster.Up(context.Background(), "kube-apiserver"); err != nil {
				t.Errorf("restarting kube-apiserver after a failure: %v", err)
			}
		}
	})
	t.Logf("kube-apiserver stopped in %s", round(downAt.Sub(stopping)))

	// One attempt each, on instances no other call touches: the answer must be "retry", and
	// nothing may have changed (the final check finds these instances as they were, and no
	// instance for the probe's order line).
	probes := []struct {
		what string
		send func() (*simulator.Response, error)
	}{
		{"newInstance", func() (*simulator.Response, error) {
			_, err := probe.NewInstance(ctx, koogallery.NewInstanceRequest{OrderID: unborn.orderID, OrderLineID: unborn.lineID(), BusinessID: "apisprobe-b1"})
			return nil, err
		}},
		{"refreshInstance", func() (*simulator.Response, error) {
			return probe.RefreshInstance(ctx, koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: "APISPROBERN",
				OrderLineID: "APISPROBERN-000001", InstanceID: running[16].id(), ExpireTime: koogallery.FormatExpireTime(time.Now().AddDate(3, 0, 0))})
		}},
		{"updateInstanceStatus", func() (*simulator.Response, error) {
			return probe.UpdateInstanceStatus(ctx, koogallery.UpdateInstanceStatusRequest{InstanceID: running[17].id(), Status: koogallery.StatusFreeze})
		}},
		{"upgradeInstance", func() (*simulator.Response, error) {
			return probe.UpgradeInstance(ctx, koogallery.UpgradeInstanceRequest{InstanceID: running[18].id(),
				OrderID: running[18].upgradeOrderID, OrderLineID: running[18].upgradeOrderID + "-000001"})
		}},
		{"releaseInstance", func() (*simulator.Response, error) {
			return probe.ReleaseInstance(ctx, koogallery.ReleaseInstanceRequest{InstanceID: running[19].id()})
		}},
	}
	for _, p := range probes {
		_, err := p.send()
		var ce *simulator.CallError
		g.Expect(errors.As(err, &ce)).To(BeTrue(), "%s while the API server is down: %v", p.what, err)
		g.Expect(ce.ResultCode).To(Equal(koogallery.ResultInternalError), "%s while the API server is down: %v", p.what, err)
	}
	q, err := probe.QueryInstance(ctx, koogallery.TestFlagProduction, running[16].id())
	g.Expect(err).NotTo(HaveOccurred(), "queryInstance of a ready instance while the API server is down")
	g.Expect(q.ResultCode).To(Equal(koogallery.ResultSuccess), "queryInstance is answered from the cache")
	g.Expect(q.Info).To(HaveLen(1))
	g.Expect(q.Info[0].AppInfo).NotTo(BeNil(), "queryInstance of a ready instance lost its appInfo")

	// KooGallery's calls during the outage, with its retries: new buyers and every change.
	before := len(sim.Exchanges())
	var flows []func() error
	for _, tn := range fresh {
		flows = append(flows, func() error { return tn.create(ctx, sim, out, false) })
	}
	for i, tn := range running[:16] {
		switch i % 4 {
		case 0:
			flows = append(flows, func() error { return tn.setFrozen(ctx, sim, out, true) })
		case 1:
			flows = append(flows, func() error { return tn.renew(ctx, sim, out, time.Now().AddDate(2, 0, i)) })
		case 2:
			flows = append(flows, func() error { return tn.upgrade(ctx, sim, out) })
		default:
			flows = append(flows, func() error { return tn.release(ctx, sim, out) })
		}
	}
	done := make(chan []error, 1)
	go func() { done <- eachOf(len(flows), len(flows), func(i int) error { return flows[i]() }) }()

	// Every flow has been answered at least once while the API server was down.
	var duringOutage []simulator.Exchange
	g.Eventually(func(g Gomega) {
		duringOutage = sim.Exchanges()[before:]
		firsts := 0
		for _, e := range duringOutage {
			if e.Attempt == 1 && e.Activity != koogallery.ActivityQueryInstance {
				firsts++
			}
		}
		g.Expect(firsts).To(BeNumerically(">=", len(flows)))
	}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	for _, e := range duringOutage {
		g.Expect(answerOf(e)).To(Equal(koogallery.ResultInternalError), "%s attempt %d while the API server was down", e.Activity, e.Attempt)
	}

	starting := time.Now()
	if err := cluster.Up(ctx, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	up = true
	row.disruption = "1/1"
	readyAt := time.Now()
	t.Logf("kube-apiserver gone for %s, then ready %s after its start", round(starting.Sub(downAt)), round(readyAt.Sub(starting)))
	noErrors(t, "calls sent during the outage", <-done)
	allAnswered := time.Since(readyAt)

	// An attempt may time out (KooGallery waits 5 s) while the API server comes back on this
	// shared machine; KooGallery retries it like a 000005.
	expectRetryable(g, sim)
	tr := trafficOf(sim)
	converged := expectConverged(t, ctx, prefix, append(append([]*tenant{}, running...), fresh...), 3*time.Minute)
	row.recovery = fmt.Sprintf("unavailable %s (stop to ready); every call accepted %s after; converged %s",
		round(readyAt.Sub(stopping)), round(allAnswered), round(converged))
	t.Logf("%s; answers to attempts: %s", row.recovery, rig.Counts(tr.answers))
}
