//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// ceiling measures the API server's raw write ceiling in this run: one client with no rate
// limit creating small ConfigMaps from many goroutines as fast as it can.
func (b *bench) ceiling(n int) ceilingResult {
	c := b.plainClient() // no client-side limit: the server is what is measured
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-ceiling"}}
	if err := c.Create(b.ctx, ns); err != nil {
		b.t.Fatal(err)
	}
	const workers = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + strconv.FormatInt(i, 10), Namespace: ns.Name},
					Data: map[string]string{"k": "v"}}
				if err := c.Create(b.ctx, cm); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.t.Fatalf("raw writes: %v", err)
	}
	return ceilingResult{Writes: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds()}
}

// provision sends n newInstance callbacks as fast as koosim load sends them and waits until
// every instance is Ready.
func (b *bench) provision(prefix string, n int, audited bool, ceil ceilingResult) provisionResult {
	b.registerOrders(prefix, n)
	names := loadNames(prefix, n)
	before, clusterBefore := b.metrics(), b.apiServerMetrics()
	cpu := cpuTimes()
	start := time.Now()
	load := b.koosim("--count", strconv.Itoa(n), "--concurrency", "16", "--order-prefix", prefix)
	if load.Failed > 0 {
		b.t.Fatalf("%d of %d newInstance calls failed: %v", load.Failed, n, load.Codes)
	}
	times := b.awaitReady(names, 2*time.Minute+time.Duration(n)*300*time.Millisecond)
	after, clusterAfter := b.metrics(), b.apiServerMetrics()
	r := provisionResult{Orders: n, Audited: audited, Load: load, CPU: cpuSince(cpu)}
	var last time.Time
	lat := make([]time.Duration, len(times))
	for i, at := range times {
		lat[i] = at.Sub(start)
		if at.After(last) {
			last = at
		}
	}
	r.Total = last.Sub(start)
	r.PerSecond = float64(n) / r.Total.Seconds()
	r.Writes = writes(after) - writes(before)
	r.Reconciles = reconciles(after) - reconciles(before)
	r.WriteRate = r.Writes / r.Total.Seconds()
	r.CeilingRatio = r.WriteRate / ceil.PerSecond
	r.Mix = mixSince(clusterBefore, clusterAfter, n)
	r.ClusterWrites = clusterWrites(clusterAfter) - clusterWrites(clusterBefore)
	r.ClusterRate = r.ClusterWrites / r.Total.Seconds()
	r.ClusterRatio = r.ClusterRate / ceil.PerSecond
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.ReadyP50, r.ReadyP99 = lat[len(lat)/2], lat[(len(lat)-1)*99/100]
	return r
}

func (b *bench) apiServerMetrics() map[string]float64 {
	m, err := b.cluster.APIServerMetrics(b.ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	return m
}

// clusterWrites is how many write requests the API server has served, from every client.
func clusterWrites(m map[string]float64) float64 {
	return sumVerbs(m, "apiserver_request_total", "verb", "POST", "PUT", "PATCH", "APPLY", "DELETE")
}

func reconciles(m map[string]float64) float64 {
	return rig.Sum(m, "controller_runtime_reconcile_total", `controller="marketplaceinstance"`)
}

// koosim runs `koosim load` against the operator and returns its result.
func (b *bench) koosim(args ...string) *simulator.LoadResult {
	cmd := exec.CommandContext(b.ctx, filepath.Join(b.bin, "koosim"), append([]string{"load",
		"--url", b.op.MarketplaceURL + "/saasproduce", "--json"}, args...)...)
	cmd.Env = append(os.Environ(), "KOOSIM_KEY="+b.keys["basic"])
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.t.Fatalf("koosim load %v: %v\n%s", args, err, stderr.String())
	}
	var res simulator.LoadResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		b.t.Fatalf("koosim load output: %v\n%s", err, stdout.String())
	}
	return &res
}

// bare creates the same MarketplaceInstance objects the webhook creates for registered orders,
// at the same rate, with a plain client: the floor the webhook's latency is compared with.
func (b *bench) bare(c client.Client, prefix string, n int, rate float64) *simulator.LoadResult {
	return b.paced(n, rate, func(i int) error {
		order := simulator.LoadOrderID(prefix, i)
		return c.Create(b.ctx, &saasv1alpha1.MarketplaceInstance{
			ObjectMeta: metav1.ObjectMeta{Name: instanceName(order)},
			Spec: saasv1alpha1.MarketplaceInstanceSpec{InstanceID: fmt.Sprintf("%s-bare-%d", strings.ToLower(prefix), i),
				Order: saasv1alpha1.OrderReference{OrderID: order, OrderLineID: simulator.MockLineID(order)},
				State: saasv1alpha1.StateActive},
		})
	})
}

// bareFreeze freezes and unfreezes the named instances by patching spec.state with a plain
// client, in the order and at the rate `koosim load` sends updateInstanceStatus to its instances:
// the same tenant churn without the endpoint, the floor that call is compared with.
func (b *bench) bareFreeze(c client.Client, names []string, n int, rate float64) *simulator.LoadResult {
	return b.paced(n, rate, func(i int) error {
		state := saasv1alpha1.StateFrozen
		if (i/len(names))%2 == 1 {
			state = saasv1alpha1.StateActive
		}
		inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: names[i%len(names)]}}
		return c.Patch(b.ctx, inst, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"state":"`+state+`"}}`)))
	})
}

// bareRenew moves spec.expireTime of the named instances with a plain client, in the order, at
// the rate and by the amounts `koosim load` renews its instances with refreshInstance: the floor
// that call is compared with.
func (b *bench) bareRenew(c client.Client, names []string, n int, rate float64) *simulator.LoadResult {
	return b.paced(n, rate, func(i int) error {
		expire := time.Now().AddDate(1, 0, 0).Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339)
		inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: names[i%len(names)]}}
		return c.Patch(b.ctx, inst, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"expireTime":"`+expire+`"}}`)))
	})
}

// plainClient is an admin client without a client-side rate limit.
func (b *bench) plainClient() client.Client {
	rc, err := b.cluster.RESTConfig("admin")
	if err != nil {
		b.t.Fatal(err)
	}
	rc.QPS, rc.Burst = -1, 0
	c, err := client.New(rc, client.Options{Scheme: b.cluster.Admin.Scheme()})
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// paced runs op n times at rate per second, at most 32 at once, and summarizes the latencies; an
// error counts as a failed call.
func (b *bench) paced(n int, rate float64, op func(i int) error) *simulator.LoadResult {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		codes = map[string]int{}
		wg    sync.WaitGroup
	)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, 32)
	start := time.Now()
	for i := range n {
		<-tick.C
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t0 := time.Now()
			err := op(i)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, d)
			if err != nil {
				codes["error"]++
				return
			}
			codes["written"]++
		}()
	}
	wg.Wait()
	return summarize(lat, codes, time.Since(start))
}

func summarize(lat []time.Duration, codes map[string]int, elapsed time.Duration) *simulator.LoadResult {
	r := &simulator.LoadResult{Sent: len(lat), Codes: codes, Elapsed: elapsed, PerSecond: float64(len(lat)) / elapsed.Seconds()}
	r.SetLatencies(lat)
	r.Succeeded = codes["written"]
	r.Failed = r.Sent - r.Succeeded
	return r
}

// latency runs each kind of callback at each rate. A writing callback runs at the same time as
// its plain-client floor, each on its own instances at the full rate: run one after the other,
// a single pause of the API server or etcd lands in one side only and decides that side's p99.
// Each run starts from a settled cluster, every instance Ready and the reconcilers idle: a run
// started while the tenants of the runs before it still provision measures that backlog. The
// patch runs create nothing, so they last three times as long, for a p99 that is not one of a
// handful of calls.
func (b *bench) latency(queryIDs []string, statusNames []string) []latencyResult {
	plainNames, ids := statusNames[len(statusNames)/2:], b.instanceIDs(statusNames)
	statusIDs := strings.Join(ids[:len(statusNames)/2], ",")
	c := b.plainClient()
	// Every instance of both sides first gets a full status.history (MaxHistory renewals each,
	// unmeasured), as an instance that has lived a while has. Otherwise the endpoint's instances
	// grow by a record per call during the run while the plain client's stay small, and the pair
	// compares writes of different objects.
	b.settle()
	b.koosim("--rate", "200", "--count", strconv.Itoa(saasv1alpha1.MaxHistory*len(statusNames)), "--concurrency", "32",
		"--activity", koogallery.ActivityRefreshInstance, "--instance-id", strings.Join(ids, ","), "--order-prefix", "WARM")
	var rows []latencyResult
	for _, rate := range b.settings.rates {
		r := strconv.Itoa(rate)
		flags := func(seconds int) []string {
			return []string{"--rate", r, "--count", strconv.Itoa(rate * seconds), "--concurrency", "32"}
		}
		n, long := rate*b.settings.seconds, 3*b.settings.seconds
		prefix := "LATN" + r
		b.registerOrders(prefix, n)
		b.registerOrders("LATB"+r, n)
		// koosim runs on the test goroutine, as it may end the test; the plain client beside it.
		pair := func(call, floor string, hook func() *simulator.LoadResult, plain func() *simulator.LoadResult) {
			b.settle()
			before := b.metrics()
			done := make(chan *simulator.LoadResult, 1)
			go func() { done <- plain() }()
			row := latencyResult{Call: call, Rate: rate, Result: hook()}
			row.endpoint(before, b.metrics())
			rows = append(rows, row, latencyResult{Call: floor, Rate: rate, Result: <-done})
		}
		pair("newInstance", bareCreate,
			func() *simulator.LoadResult {
				return b.koosim(append(flags(b.settings.seconds), "--order-prefix", prefix)...)
			},
			func() *simulator.LoadResult { return b.bare(c, "LATB"+r, n, float64(rate)) })
		for _, q := range []struct{ call, ids string }{{"queryInstance, 1 ID", queryIDs[0]}, {"queryInstance, 100 IDs", strings.Join(queryIDs, ",")}} {
			b.settle()
			res := b.koosim(append(flags(b.settings.seconds), "--activity", koogallery.ActivityQueryInstance, "--instance-id", q.ids)...)
			rows = append(rows, latencyResult{Call: q.call, Rate: rate, Result: res})
		}
		pair("updateInstanceStatus", bareFreeze,
			func() *simulator.LoadResult {
				return b.koosim(append(flags(long), "--activity", koogallery.ActivityUpdateInstanceStatus, "--instance-id", statusIDs)...)
			},
			func() *simulator.LoadResult { return b.bareFreeze(c, plainNames, rate*long, float64(rate)) })
		pair("refreshInstance", bareRenew,
			func() *simulator.LoadResult {
				return b.koosim(append(flags(long), "--activity", koogallery.ActivityRefreshInstance,
					"--instance-id", statusIDs, "--order-prefix", "RENEW"+r)...)
			},
			func() *simulator.LoadResult { return b.bareRenew(c, plainNames, rate*long, float64(rate)) })
	}
	return rows
}

// endpoint fills in the endpoint's own figures for the row's calls from the manager's metrics
// before and after them.
func (l *latencyResult) endpoint(before, after map[string]float64) {
	grew := func(metric, label string) float64 {
		return rig.Sum(after, metric, label) - rig.Sum(before, metric, label)
	}
	activity := `activity="` + l.Call + `"`
	if n := grew("marketplace_callback_duration_seconds_count", activity); n > 0 {
		l.Handler = time.Duration(grew("marketplace_callback_duration_seconds_sum", activity) / n * float64(time.Second))
	}
	if l.Result.Sent > 0 {
		l.Behind = grew("marketplace_call_rereads_total", `reason="cache_behind"`) / float64(l.Result.Sent)
		l.Refused = grew("marketplace_call_rereads_total", `reason="refused"`) / float64(l.Result.Sent)
	}
}

// settle waits until every instance has been Ready (frozen ones stay frozen) and the
// reconcilers are idle.
func (b *bench) settle() {
	b.awaitReady(b.allNames(b.instanceCount()), 20*time.Minute)
	b.idle()
}

// The plain-client rows, and the callback each one is the floor of.
const (
	bareCreate = "bare create (client)"
	bareFreeze = "bare spec.state patch (client)"
	bareRenew  = "bare spec.expireTime patch (client)"
)

// floors pairs each callback with the plain-client row it is compared with.
var floors = [][2]string{{"newInstance", bareCreate}, {"updateInstanceStatus", bareFreeze}, {"refreshInstance", bareRenew}}

// instanceIDs are the marketplace instance IDs of the named instances.
func (b *bench) instanceIDs(names []string) []string {
	ids := make([]string, 0, len(names))
	for _, n := range names {
		var inst saasv1alpha1.MarketplaceInstance
		if err := b.cluster.Admin.Get(b.ctx, client.ObjectKey{Name: n}, &inst); err != nil {
			b.t.Fatal(err)
		}
		ids = append(ids, inst.Spec.InstanceID)
	}
	return ids
}

// fill creates instances with a plain client until total exist, and returns their names.
func (b *bench) fill(total int) []string {
	var list saasv1alpha1.MarketplaceInstanceList
	if err := b.cluster.Admin.List(b.ctx, &list); err != nil {
		b.t.Fatal(err)
	}
	missing := total - len(list.Items)
	if missing <= 0 {
		return nil
	}
	b.registerOrders("FILL", missing)
	b.bare(b.plainClient(), "FILL", missing, 400)
	return loadNames("FILL", missing)
}

// restart stops the operator, starts it again and measures how long it takes until it serves
// callbacks (a queryInstance answered 000000) and until its initial reconcile of every
// instance has drained, and how many writes that resync made.
func (b *bench) restart(queryID string) startupResult {
	b.op.Stop()
	if err := b.op.Launch(); err != nil {
		b.t.Fatal(err)
	}
	start := b.op.Started()
	var r startupResult
	sim, err := simulator.New(simulator.Config{ProductionURL: b.op.MarketplaceURL + "/saasproduce", BasicKey: []byte(b.keys["basic"])})
	if err != nil {
		b.t.Fatal(err)
	}
	g := NewWithT(b.t)
	g.Eventually(func() string {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		reply, err := sim.QueryInstance(ctx, koogallery.TestFlag(""), queryID)
		if err != nil {
			return err.Error()
		}
		return reply.ResultCode
	}).WithTimeout(5*time.Minute).WithPolling(20*time.Millisecond).Should(Equal(koogallery.ResultSuccess),
		func() string { return "the operator did not serve callbacks after a restart:\n" + b.op.Tail(30) })
	r.Serving = time.Since(start)
	if err := b.op.WaitReady(b.ctx); err != nil {
		b.t.Fatal(err)
	}
	// The resync is over when every instance was reconciled once and the queue is empty.
	instances := float64(b.instanceCount())
	var m map[string]float64
	g.Eventually(func() bool {
		m = b.metrics()
		return rig.Sum(m, "workqueue_depth", `name="marketplaceinstance"`) == 0 && reconciles(m) >= instances
	}).WithTimeout(10*time.Minute).WithPolling(250*time.Millisecond).Should(BeTrue(),
		func() string { return "the initial reconcile did not drain:\n" + b.op.Tail(30) })
	r.Resynced = time.Since(start)
	r.ResyncWrites = writes(m)
	r.Reconciles = reconciles(m)
	return r
}

func (b *bench) instanceCount() int {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(saasv1alpha1.GroupVersion.WithKind("MarketplaceInstanceList"))
	if err := b.cluster.Admin.List(b.ctx, &list); err != nil {
		b.t.Fatal(err)
	}
	return len(list.Items)
}

// quiet measures the operator's writes over a window in which nothing asks for a change.
func (b *bench) quiet(window time.Duration) float64 {
	before := writes(b.metrics())
	b.wait(window)
	return writes(b.metrics()) - before
}

// wait lets a measurement's window pass (nothing to await: the window is the measurement), or
// ends with the test.
func (b *bench) wait(window time.Duration) {
	select {
	case <-time.After(window):
	case <-b.ctx.Done():
	}
}

// profile fetches a pprof profile into the results folder.
func (b *bench) profile(kind, name string, seconds int) string {
	url := fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", b.op.PprofURL, kind, seconds)
	if seconds == 0 {
		url = fmt.Sprintf("%s/debug/pprof/%s?gc=1", b.op.PprofURL, kind)
	}
	resp, err := http.Get(url)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	path := filepath.Join(b.out, name)
	f, err := os.Create(path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// top is `go tool pprof -top` of a profile, trimmed to its first lines.
func top(path string, lines int, extra ...string) string {
	out, err := exec.Command("go", append(append([]string{"tool", "pprof", "-top"}, extra...), path)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("pprof: %v", err)
	}
	l := strings.Split(string(out), "\n")
	if len(l) > lines {
		l = l[:lines]
	}
	return strings.Join(l, "\n")
}
