//go:build bench

package bench

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

type ceilingResult struct {
	Writes    int
	Elapsed   time.Duration
	PerSecond float64
}

type provisionResult struct {
	Orders             int
	Pair               int // which pair of its size, from 1; 0 for the audited run
	Audited            bool
	Load               *simulator.LoadResult
	Total              time.Duration
	PerSecond          float64
	Writes, Reconciles float64
	WriteRate          float64
	CeilingRatio       float64
	// Every client's writes in the same window (kcm, scheduler, kwok and the operator), from the
	// API server's metrics: what provisioning costs the cluster.
	ClusterWrites, ClusterRate, ClusterRatio float64
	ReadyP50, ReadyP99                       time.Duration
	CPU                                      map[string]time.Duration
	Mix                                      apiMix
}

type latencyResult struct {
	Call   string
	Rate   int
	Result *simulator.LoadResult
	// Handler is the endpoint's own mean time per call (marketplace_callback_duration_seconds),
	// from reading the call to writing its answer; the rest of Result.Mean is koosim, HTTP and
	// waiting for a CPU. Zero for a plain client's run.
	Handler time.Duration
	// Behind and Refused are the endpoint's instance reads per call (marketplace_call_rereads_total):
	// the cache did not show its last write yet, or a write was refused by its test.
	Behind, Refused float64
}

// memoryRow is a memory reading. Heap is the Go runtime's own account right after a collection:
// Live is what is reachable, InUse the spans holding it (fragmentation is the difference), Free
// the spans kept from the OS for later allocations. What RSS holds beyond InUse+Free is the
// binary's pages, stacks and the runtime's own structures.
type memoryRow struct {
	Instances int
	RSS       int64
	Heap      heapStats
	When      string
}

type heapStats struct{ Live, InUse, Free int64 }

type startupResult struct {
	Instances         int
	Serving, Resynced time.Duration
	ResyncWrites      float64
	Reconciles        float64
	QuietWindow       time.Duration
	QuietWrites       float64
}

type report struct {
	Settings  settings
	Ceiling   ceilingResult
	Provision []provisionResult
	Bare      []bareResult
	Audit     writeAudit
	Latency   []latencyResult
	Memory    []memoryRow
	Startup   startupResult
	Profiles  []string
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# marketplace-operator benchmark")
	w("")
	w("%s · %s/%s · %d CPUs · Go %s · manager args: %q · manager environment: %q", time.Now().UTC().Format("2006-01-02 15:04 MST"),
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), strings.Join(r.Settings.operatorArgs, " "),
		strings.Join(r.Settings.operatorEnv, " "))
	w("")
	w("## Callback latency (`koosim load` → operator → local control plane)")
	w("")
	w("| call | target/s | calls | achieved/s | p50 | p95 | p99 | max | answers |")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, l := range r.Latency {
		res := l.Result
		w("| %s | %d | %d | %.0f | %s | %s | %s | %s | %s |", l.Call, l.Rate, res.Sent, res.PerSecond,
			ms(res.P50), ms(res.P95), ms(res.P99), ms(res.Max), rig.Counts(res.Codes))
	}
	w("")
	w("Each writing callback against a plain client making the same change at the same rate, at the same time, to as many other instances of the same run:")
	w("")
	w("| call | plain client | target/s | p50 | plain p50 | p50 ÷ plain | p99 | plain p99 | p99 ÷ plain | mean | plain mean | in the endpoint (mean) | reads per call (cache behind, refused) |")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, rate := range r.Settings.rates {
		for _, pair := range floors {
			webhook, bare := r.find(pair[0], rate), r.find(pair[1], rate)
			if webhook != nil && bare != nil {
				w("| %s | %s | %d | %s | %s | %.2f× | %s | %s | %.2f× | %s | %s | %s | %.3f, %.3f |", pair[0], pair[1], rate,
					ms(webhook.Result.P50), ms(bare.Result.P50), float64(webhook.Result.P50)/float64(bare.Result.P50),
					ms(webhook.Result.P99), ms(bare.Result.P99), float64(webhook.Result.P99)/float64(bare.Result.P99),
					ms(webhook.Result.Mean), ms(bare.Result.Mean), ms(webhook.Handler), webhook.Behind, webhook.Refused)
			}
		}
	}
	w("")
	w("## Provisioning (first callback → every instance Ready, kwok Pods Running)")
	w("")
	w("Raw write ceiling of the API server in this run: %.0f writes/s (%d ConfigMaps, 32 goroutines, no client limit).", r.Ceiling.PerSecond, r.Ceiling.Writes)
	w("")
	r.bareTable(w)
	w("| orders | pair | total | instances/s | Ready p50 | Ready p99 | operator writes/instance | reconciles/instance | operator writes/s | of ceiling | all writes/instance | all writes/s | of ceiling |")
	w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range r.Provision {
		pair := strconv.Itoa(p.Pair)
		if p.Audited {
			pair = "audited"
		}
		w("| %d | %s | %s | %.1f | %s | %s | %.1f | %.1f | %.0f | %.0f %% | %.1f | %.0f | %.0f %% |", p.Orders, pair, p.Total.Round(100*time.Millisecond),
			p.PerSecond, p.ReadyP50.Round(100*time.Millisecond), p.ReadyP99.Round(100*time.Millisecond),
			p.Writes/float64(p.Orders), p.Reconciles/float64(p.Orders), p.WriteRate, 100*p.CeilingRatio,
			p.ClusterWrites/float64(p.Orders), p.ClusterRate, 100*p.ClusterRatio)
	}
	w("")
	r.cpuTable(w)
	a := r.Audit
	w("Audited run, from the API server's audit log: %d operator writes, %d that changed nothing, refused: %v.", a.Writes, a.Unchanged, a.Failed)
	w("")
	countTable(w, "operator write", a.ByKind)
	if a.Unchanged > 0 {
		w("")
		w("Writes that changed nothing: %v", a.UnchangedK)
	}
	w("")
	w("The operator's reads from the API server in the same run (the rest come from its cache):")
	w("")
	countTable(w, "operator get", a.Reads)
	w("")
	w("## Memory and start-up")
	w("")
	w("| instances | manager RSS | live Go heap | heap spans in use | free spans kept | when |")
	w("|---:|---:|---:|---:|---:|---|")
	for _, m := range r.Memory {
		w("| %d | %s | %s | %s | %s | %s |", m.Instances, mib(m.RSS), mib(m.Heap.Live), mib(m.Heap.InUse), mib(m.Heap.Free), m.When)
	}
	s := r.Startup
	w("")
	w("- Restart with %d instances: serving callbacks after %s; initial reconcile of every instance done after %s (%.0f reconciles, %.0f writes).",
		s.Instances, s.Serving.Round(10*time.Millisecond), s.Resynced.Round(100*time.Millisecond), s.Reconciles, s.ResyncWrites)
	w("- Writes in a %s quiet window with %d Ready instances: %.0f.", s.QuietWindow, s.Instances, s.QuietWrites)
	for _, p := range r.Profiles {
		w("")
		w("```")
		w("%s", p)
		w("```")
	}
	return b.String()
}

// countTable prints counts by key, keys sorted.
func countTable(w func(string, ...any), what string, counts map[string]int) {
	w("| %s | count |", what)
	w("|---|---:|")
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w("| %s | %d |", k, counts[k])
	}
}

// bareTable compares each operator run with the bare tenants of the same orders and pair, with
// their custom resources and without: the ceiling for provisioning, and what the operator costs
// beyond the custom resource the architecture asks for. A size measured in several pairs gets
// the median of their ratios.
func (r *report) bareTable(w func(string, ...any)) {
	if len(r.Bare) == 0 {
		return
	}
	b0 := r.Bare[0]
	w("Provisioning ceiling in this run: a plain client applies the objects the operator renders for the same orders "+
		"(namespace, quota, limits, network policies, credentials, the plan's workload) with the manager's %d workers "+
		"and client limit (%.0f/s, burst %d), and waits for every Deployment to be Available (`bare`). `bare + CR` does "+
		"the same and also what the architecture asks of any operator: each tenant's custom resource (a copy of the "+
		"MarketplaceInstance CRD under another group) created first, owner references to it, its status written once "+
		"applied (with the inventory) and once Ready, and the Ready Event. Every run starts once the cluster's CPU is "+
		"back near what it used idle; the last size runs in %d pairs (an operator run and its two bare runs), each "+
		"started one side later than the pair before, and counts by their median.", b0.Workers, b0.QPS, b0.Burst, r.Settings.pairs)
	w("")
	w("| orders | pair | client | first | client total | client tenants/s | client Ready p50 | client Ready p99 | operator total | operator tenants/s | operator ÷ client |")
	w("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
	type size struct {
		orders int
		cr     bool
	}
	ratios := map[size][]float64{}
	var sizes []size
	for _, bare := range r.Bare {
		first, total, op, ratio := "operator", "–", "–", "–"
		if bare.First {
			first = bare.client()
		}
		if p := r.operatorRun(bare.Orders, bare.Pair); p != nil {
			q := p.PerSecond / bare.PerSecond
			k := size{bare.Orders, bare.CR}
			if len(ratios[k]) == 0 {
				sizes = append(sizes, k)
			}
			ratios[k] = append(ratios[k], q)
			total, op, ratio = p.Total.Round(100*time.Millisecond).String(), fmt.Sprintf("%.1f", p.PerSecond), fmt.Sprintf("%.0f %%", 100*q)
		}
		w("| %d | %d | %s | %s | %s | %.1f | %s | %s | %s | %s | %s |", bare.Orders, bare.Pair, bare.client(), first,
			bare.Total.Round(100*time.Millisecond), bare.PerSecond, bare.ReadyP50.Round(100*time.Millisecond),
			bare.ReadyP99.Round(100*time.Millisecond), total, op, ratio)
	}
	w("")
	for _, n := range r.Settings.provision {
		names, mixes := []string{"operator"}, []apiMix{nil}
		if p := r.operatorRun(n, 1); p != nil {
			mixes[0] = p.Mix
		}
		for _, bare := range r.Bare {
			if bare.Orders == n && bare.Pair == 1 {
				names, mixes = append(names, bare.client()), append(mixes, bare.Mix)
			}
		}
		if mixes[0] != nil && len(mixes) > 1 {
			mixTable(w, n, names, mixes)
		}
	}
	for _, k := range sizes {
		if q := ratios[k]; len(q) > 1 {
			each := make([]string, len(q))
			for i, v := range q {
				each[i] = fmt.Sprintf("%.0f %%", 100*v)
			}
			w("Operator ÷ %s for %d orders, median of %d pairs: **%.0f %%** (%s).", bareResult{CR: k.cr}.client(), k.orders, len(q),
				100*median(q), strings.Join(each, ", "))
			w("")
		}
	}
}

// client names the bare client of a run in the report.
func (b bareResult) client() string {
	if b.CR {
		return "bare + CR"
	}
	return "bare"
}

// operatorRun is the unaudited operator run of a pair.
func (r *report) operatorRun(orders, pair int) *provisionResult {
	for i, p := range r.Provision {
		if p.Orders == orders && p.Pair == pair && !p.Audited {
			return &r.Provision[i]
		}
	}
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) find(call string, rate int) *latencyResult {
	for i, l := range r.Latency {
		if l.Call == call && l.Rate == rate {
			return &r.Latency[i]
		}
	}
	return nil
}
