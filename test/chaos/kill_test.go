//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// journey is what one buyer does after buying: drawn from the seed before the run, so the mix
// replays with CHAOS_SEED.
type journey struct {
	dup, renew, freezeCycle, upgrade bool
	end                              string // running, frozen or released
	renewTo                          time.Time
	// pauses between the buyer's calls: buyers do not act back to back, so the kills land
	// between calls as well as in them.
	pauses [6]time.Duration
}

const (
	endRunning  = "running"
	endFrozen   = "frozen"
	endReleased = "released"
)

func drawJourney(rng *rand.Rand, i int) journey {
	j := journey{
		dup:         rng.IntN(4) == 0,
		renew:       rng.IntN(10) < 8,
		freezeCycle: rng.IntN(2) == 0,
		upgrade:     rng.IntN(10) < 3,
		end:         endRunning,
		// Distinct per buyer, so an expiry applied to the wrong instance shows.
		renewTo: time.Now().UTC().AddDate(1, 0, 0).Add(time.Duration(i) * time.Minute),
	}
	switch n := rng.IntN(10); {
	case n < 2:
		j.end = endReleased
	case n < 4:
		j.end = endFrozen
	}
	for k := range j.pauses {
		j.pauses[k] = time.Duration(rng.Int64N(int64(400 * time.Millisecond)))
	}
	return j
}

// live runs the journey: create (polled until ready), then renew, freeze and unfreeze, upgrade,
// and finally freeze or release, each call retried as KooGallery retries it.
func (j journey) live(ctx context.Context, tn *tenant, sim *simulator.Simulator, out *outcomes) error {
	steps := []func() error{
		func() error { return tn.create(ctx, sim, out, j.dup) },
	}
	if j.renew {
		steps = append(steps, func() error { return tn.renew(ctx, sim, out, j.renewTo) })
	}
	if j.freezeCycle {
		steps = append(steps, func() error { return tn.setFrozen(ctx, sim, out, true) },
			func() error { return tn.setFrozen(ctx, sim, out, false) })
	}
	if j.upgrade {
		steps = append(steps, func() error { return tn.upgrade(ctx, sim, out) })
	}
	switch j.end {
	case endFrozen:
		steps = append(steps, func() error { return tn.setFrozen(ctx, sim, out, true) })
	case endReleased:
		steps = append(steps, func() error { return tn.release(ctx, sim, out) })
	}
	for k, step := range steps {
		if k > 0 {
			if err := pause(ctx, j.pauses[k-1]); err != nil {
				return err
			}
		}
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// kills is what the chaos goroutine did.
type kills struct {
	count int
	// ready is, per kill, the time from SIGKILL until the restarted manager was ready.
	ready []time.Duration
	last  time.Time
}

// killAtRandom SIGKILLs the manager every 2 to 6 s (drawn from rng) and restarts it at once, as
// the kubelet restarts a crashed container, until stop is closed. The manager is running when
// it returns without error.
func killAtRandom(ctx context.Context, t *testing.T, op *rig.Operator, rng *rand.Rand, stop <-chan struct{}) (kills, error) {
	var k kills
	start := time.Now()
	for {
		timer := time.NewTimer(2*time.Second + time.Duration(rng.Int64N(int64(4*time.Second))))
		select {
		case <-stop:
			timer.Stop()
			return k, nil
		case <-ctx.Done():
			timer.Stop()
			return k, ctx.Err()
		case <-timer.C:
		}
		op.Kill()
		k.count++
		k.last = time.Now()
		if err := op.Start(ctx); err != nil {
			return k, fmt.Errorf("restarting after kill %d: %w", k.count, err)
		}
		k.ready = append(k.ready, time.Since(k.last))
		t.Logf("kill %d at +%s; ready again after %s", k.count, round(k.last.Sub(start)), round(k.ready[len(k.ready)-1]))
	}
}

// TestSIGKILLAtRandomPoints: 200 buyers, 16 at a time, go through their lifecycle while the
// manager (one replica, so no Lease to wait out after each restart) is SIGKILLed at random
// moments and restarted. Every call must end in 000000 through KooGallery's retries, and the
// cluster must end exactly as the last accepted calls asked: state, plan, expiry, releases,
// one instance per order line and no namespace left behind.
func TestSIGKILLAtRandomPoints(t *testing.T) {
	const instances, concurrency, prefix = 200, 16, "kill"
	ctx, row := startScenario(t, "SIGKILL at random points", 9*time.Minute)
	row.instances = instances

	rng := rand.New(rand.NewPCG(seed, 1)) //nolint:gosec // a replayable test mix
	tenants, journeys := make([]*tenant, instances), make([]journey, instances)
	for i := range tenants {
		tenants[i] = newTenant(fmt.Sprintf("KILL%04d", i))
		journeys[i] = drawJourney(rng, i)
	}
	op := startOperator(t, ctx, "kill", "")
	sim := newSimulator(t, op.MarketplaceURL)
	out := &outcomes{}
	row.sims, row.out = []*simulator.Simulator{sim}, out

	stop := make(chan struct{})
	type chaosResult struct {
		k   kills
		err error
	}
	chaosDone := make(chan chaosResult, 1)
	// A manager that does not come back would leave the buyers retrying until the deadline.
	buyersCtx, stopBuyers := context.WithCancel(ctx)
	defer stopBuyers()
	go func() {
		k, err := killAtRandom(ctx, t, op, rand.New(rand.NewPCG(seed, 2)), stop) //nolint:gosec // replayable delays
		if err != nil {
			stopBuyers()
		}
		chaosDone <- chaosResult{k, err}
	}()

	start := time.Now()
	errs := eachOf(instances, concurrency, func(i int) error { return journeys[i].live(buyersCtx, tenants[i], sim, out) })
	buyers := time.Since(start)
	close(stop)
	cr := <-chaosDone
	row.disruption = fmt.Sprintf("%d/%d", cr.k.count, len(cr.k.ready))
	if cr.err != nil {
		t.Fatalf("chaos: %v", cr.err)
	}
	noErrors(t, "buyers", errs)
	expectRetryable(NewWithT(t), sim)
	t.Logf("buyers done in %s with %d kills; answers to attempts: %s", round(buyers), cr.k.count, rig.Counts(trafficOf(sim).answers))

	converged := expectConverged(t, ctx, prefix, tenants, 4*time.Minute)
	p50, maxReady := quantiles(cr.k.ready)
	row.recovery = fmt.Sprintf("restart→ready p50 %s max %s; converged %s after the buyers", round(p50), round(maxReady), round(converged))
	t.Logf("%s", row.recovery)
}
