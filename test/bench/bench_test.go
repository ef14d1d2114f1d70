//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/marketplace-operator/marketplace-operator/internal/rig"
)

func TestBench(t *testing.T) {
	b := setup(t)
	s := b.settings
	rep := &report{Settings: s}
	// Written however the run ends, so a run cut short still leaves what it measured.
	defer b.write(rep)
	rep.Memory = append(rep.Memory, b.memory(0, "ready, nothing to do"))
	idle := newCPUMeter()
	b.wait(5 * time.Second)
	b.baseline, _ = idle.read(0)
	rep.Ceiling = b.ceiling(s.ceiling)
	t.Logf("raw write ceiling %.0f/s", rep.Ceiling.PerSecond)

	// Each size provisioned by the operator, by the bare client, and by the bare client with
	// each tenant's custom resource (bareCRGVK), unaudited: the audit log costs the API server
	// most for the largest requests (the custom resource's writes with their bodies), which
	// would weigh on the operator's side of the ratio. The last size's runs are short enough
	// that whatever the cluster does besides lands in one run of a pair, so it is measured in
	// several pairs (an operator run and its two bare runs), each starting one side later than
	// the pair before, and reported by the median. Every run starts on a quiet cluster. The
	// first operator run is profiled, and the bare run beside it.
	var names []string
	for i, n := range s.provision {
		pairs := 1
		if i == len(s.provision)-1 {
			pairs = s.pairs
		}
		for pair := 1; pair <= pairs; pair++ {
			prefix := fmt.Sprintf("PROV%c%d", 'A'+i, pair)
			first := i == 0 && pair == 1
			operator := func() {
				b.quietCluster()
				done := make(chan string, 1)
				if first {
					go func() { done <- b.profile("profile", "cpu-provision.pprof", 15) }()
					go b.apiServerProfile("apiserver-provision.pprof")
				}
				p := b.provision(prefix, n, false, rep.Ceiling)
				p.Pair = pair
				t.Logf("pair %d: provisioned %d in %s", pair, n, p.Total)
				rep.Provision = append(rep.Provision, p)
				if first {
					rep.Profiles = append(rep.Profiles, "CPU profile during the first provisioning run:\n"+top(<-done, 25, "-cum"))
					names = loadNames(prefix, n)
					rep.Memory = append(rep.Memory, b.memory(b.instanceCount(), "after provisioning them"))
				}
			}
			bare := func(withCR, bareFirst bool) {
				prefix := fmt.Sprintf("BARE%c%d", 'A'+i, pair)
				if withCR {
					prefix = fmt.Sprintf("BCR%c%d", 'A'+i, pair)
				}
				r := b.bareRun(prefix, n, first && !withCR, withCR)
				r.Pair, r.First = pair, bareFirst
				rep.Bare = append(rep.Bare, r)
			}
			// The three sides in turn (0 the operator, 1 bare, 2 bare + CR): each pair starts one
			// side later than the pair before.
			ranOperator := false
			for k := range 3 {
				switch side := (pair - 1 + k) % 3; side {
				case 0:
					operator()
					ranOperator = true
				default:
					bare(side == 2, !ranOperator)
				}
			}
		}
	}

	// The audited run counts what the operator writes and reads for the last size's orders;
	// its timings carry the audit log's cost and are not compared with a bare run.
	b.apiServerAudit(b.auditOn)
	last := s.provision[len(s.provision)-1]
	b.quietCluster()
	rep.Provision = append(rep.Provision, b.provision("AUDIT", last, true, rep.Ceiling))
	audit, err := analyzeAudit(b.cluster.AuditLog(), "marketplace-operator")
	if err != nil {
		t.Fatal(err)
	}
	rep.Audit = audit
	b.apiServerAudit("")

	queryIDs := b.instanceIDs(names[:min(100, len(names))])
	// 100 instances for the patching callbacks and 100 others for the plain client beside them.
	rep.Latency = b.latency(queryIDs, names[len(names)-min(200, len(names)/2):])

	// Grow to the memory run's size and let every instance become Ready.
	b.fill(s.instances)
	all := b.allNames(b.instanceCount())
	b.awaitReady(all, 20*time.Minute)
	rep.Memory = append(rep.Memory, b.memory(len(all), "all Ready, after the latency runs"))
	heap := b.profile("heap", "heap.pprof", 0)
	rep.Profiles = append(rep.Profiles, "Heap in use with every instance Ready:\n"+top(heap, 15, "-sample_index=inuse_space"))

	rep.Startup = b.restart(queryIDs[0])
	rep.Startup.Instances = len(all)
	rep.Memory = append(rep.Memory, b.memory(len(all), "restarted, initial reconcile done"))
	rep.Startup.QuietWindow = 20 * time.Second
	rep.Startup.QuietWrites = b.quiet(rep.Startup.QuietWindow)

	// Not timings: what must hold whatever the machine.
	g := NewWithT(t)
	g.Expect(audit.Unchanged).To(BeZero(), "writes that changed nothing: %v", audit.UnchangedK)
	g.Expect(rep.Startup.ResyncWrites).To(BeZero(), "the initial reconcile of Ready instances wrote")
	g.Expect(rep.Startup.QuietWrites).To(BeZero(), "writes while nothing changed")
	for _, l := range rep.Latency {
		g.Expect(l.Result.Failed).To(BeZero(), "%s at %d/s: %v", l.Call, l.Rate, l.Result.Codes)
	}
}

// bareRun provisions the bare tenants of an operator run's size once the operator is idle, with
// their custom resources or without, and removes them again. A profiled run profiles the API
// server as the first operator run does, for a side by side.
func (b *bench) bareRun(prefix string, n int, profiled, withCR bool) bareResult {
	b.quietCluster()
	if profiled {
		go b.apiServerProfile("apiserver-bare.pprof")
	}
	r := b.bareTenants(prefix, n, withCR)
	b.t.Logf("bare (custom resource %t): %d tenants in %s", withCR, n, r.Total)
	b.removeBareTenants()
	if withCR {
		b.removeBareCRs()
	}
	return r
}

// apiServerProfile profiles the API server's CPU for the first 15 s of a provisioning run into
// the results folder (go tool pprof -top -cum of the two files shows where the operator's
// tenants cost the API server more than the bare ones).
func (b *bench) apiServerProfile(name string) {
	if err := b.cluster.APIServerProfile(b.ctx, 15, filepath.Join(b.out, name)); err != nil && b.ctx.Err() == nil {
		b.t.Logf("profiling the API server: %v", err)
	}
}

func (b *bench) write(rep *report) {
	md := rep.markdown()
	out := resultsFile(b.root)
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		b.t.Error(err)
	}
	os.Stdout.WriteString("\n" + md + "\nwritten to " + out + "\n")
}

// memory waits until the reconcilers are idle, then reads the manager's RSS, then its heap: the
// Go runtime's statistics right after a collection the heap profile endpoint forces, as that
// same response reports them. Reconciles still running after every instance reports Ready
// would add what they allocate meanwhile, several times the cache at thousands of instances.
// RSS is what a container limit must hold; the live heap is what the operator keeps, the rest
// being the collector's headroom (GOGC).
func (b *bench) memory(instances int, when string) memoryRow {
	b.idle()
	rss, err := b.op.RSS()
	if err != nil {
		b.t.Fatal(err)
	}
	return memoryRow{Instances: instances, RSS: rss, Heap: b.heap(), When: when}
}

// idle waits until the instance controller's queue is empty and no worker is busy, twice in a
// row a second apart.
func (b *bench) idle() {
	quiet := 0
	NewWithT(b.t).Eventually(func() bool {
		m := b.metrics()
		if rig.Sum(m, "workqueue_depth", `name="marketplaceinstance"`) == 0 &&
			rig.Sum(m, "controller_runtime_active_workers", `controller="marketplaceinstance"`) == 0 {
			quiet++
		} else {
			quiet = 0
		}
		return quiet >= 2
	}).WithTimeout(10*time.Minute).WithPolling(time.Second).Should(BeTrue(),
		func() string { return "the reconcilers did not go idle:\n" + b.op.Tail(30) })
}

// heap reads the Go runtime's memory statistics that the text form of the heap profile prints
// after its collection.
func (b *bench) heap() heapStats {
	resp, err := http.Get(b.op.PprofURL + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	stats := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil {
			stats[name] = n
		}
	}
	for _, name := range []string{"HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased"} {
		if _, ok := stats[name]; !ok {
			b.t.Fatalf("no %s in the heap profile (%v)", name, sc.Err())
		}
	}
	return heapStats{Live: stats["HeapAlloc"], InUse: stats["HeapInuse"], Free: stats["HeapIdle"] - stats["HeapReleased"]}
}

// apiServerAudit restarts the API server with the audit policy (or none); the operator and
// the readiness watch reconnect on their own, as they would after any API server restart.
func (b *bench) apiServerAudit(policy string) {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Minute)
	defer cancel()
	if err := b.cluster.Down(ctx, "kube-apiserver"); err != nil {
		b.t.Fatal(err)
	}
	b.cluster.SetAuditPolicy(policy)
	if err := b.cluster.Up(ctx, "kube-apiserver"); err != nil {
		b.t.Fatal(err)
	}
	if err := b.op.WaitReady(ctx); err != nil {
		b.t.Fatal(err)
	}
}

// allNames are the instances the readiness watch has seen, once it has seen want of them: the
// last creates' events may still be on their way.
func (b *bench) allNames(want int) []string {
	NewWithT(b.t).Eventually(func() int {
		seen, _ := b.ready.count()
		return seen
	}).WithTimeout(time.Minute).WithPolling(100*time.Millisecond).Should(BeNumerically(">=", want), "instances the readiness watch saw")
	b.ready.mu.Lock()
	defer b.ready.mu.Unlock()
	names := make([]string, 0, len(b.ready.seen))
	for n := range b.ready.seen {
		names = append(names, n)
	}
	return names
}
