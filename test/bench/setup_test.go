//go:build bench

// Package bench measures the operator as deployed, on a full local cluster (hack/cluster.sh:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok fake nodes) with the
// manager binary and `koosim load`: callback latency against a plain client making the same
// change, provisioning throughput against the API server's raw write ceiling and against a plain
// client creating the same tenants (bare tenants: the ceiling for provisioning), API writes per
// instance and writes that change nothing (from the API server's audit log), memory and
// start-up at thousands of instances. `make bench` runs it; it prints a table and writes it to
// BENCH_OUT. It asserts only what is not a timing: every call answered, every instance Ready,
// no write that changes nothing.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// settings are the sizes of a run; BENCH_QUICK=1 shrinks them to a smoke run.
type settings struct {
	provision    []int // orders per provisioning run; the last size is run again audited
	pairs        int   // operator and bare runs of the last size, for a median
	rates        []int // callback rates of the latency runs, per second
	seconds      int   // length of each latency run
	instances    int   // instances present for the memory and start-up figures
	ceiling      int   // objects the raw write ceiling creates
	operatorArgs []string
	operatorEnv  []string
}

func loadSettings() settings {
	// 1,800 provisioned (1,000, three pairs' 200 and 200 audited) and 3,000 created by the
	// latency runs (at 50 and 200/s for 6 s, by the webhook and by a plain client) leave 200 for
	// the memory run to add: it measures at 5,000.
	s := settings{provision: []int{1000, 200}, pairs: 3, rates: []int{50, 200}, seconds: 6, instances: 5000, ceiling: 4000,
		operatorArgs: strings.Fields(envOr("BENCH_OPERATOR_ARGS", "")), operatorEnv: strings.Fields(envOr("BENCH_OPERATOR_ENV", ""))}
	if os.Getenv("BENCH_QUICK") == "1" {
		s = settings{provision: []int{40, 20}, pairs: 2, rates: []int{20}, seconds: 5, instances: 300, ceiling: 500,
			operatorArgs: s.operatorArgs, operatorEnv: s.operatorEnv}
	}
	// Sizes in between, for a machine or a session with less time.
	if v := ints(os.Getenv("BENCH_PROVISION")); len(v) >= 2 {
		s.provision = v
	}
	if v := ints(os.Getenv("BENCH_PAIRS")); len(v) == 1 {
		s.pairs = v[0]
	}
	if v := ints(os.Getenv("BENCH_RATES")); len(v) > 0 {
		s.rates = v
	}
	if v := ints(os.Getenv("BENCH_SECONDS")); len(v) == 1 {
		s.seconds = v[0]
	}
	if v := ints(os.Getenv("BENCH_INSTANCES")); len(v) == 1 {
		s.instances = v[0]
	}
	return s
}

// ints parses a comma-separated list of positive integers; anything else gives none.
func ints(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// resultsFile is BENCH_OUT, a relative one taken from the repository root (where make runs, not
// the package folder go test runs in).
func resultsFile(root string) string {
	f := envOr("BENCH_OUT", filepath.Join(".bench", "results.md"))
	if !filepath.IsAbs(f) {
		f = filepath.Join(root, f)
	}
	return f
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// bench is the running system under measurement.
type bench struct {
	t        *testing.T
	ctx      context.Context
	root     string
	out      string // folder of the results, profiles and logs
	bin      string
	cluster  *rig.Cluster
	op       *rig.Operator
	koo      *simulator.OpenAPIServer
	keys     map[string]string
	auditOn  string // the audit policy file
	ready    *readiness
	settings settings
	baseline float64 // the control plane's CPU, in cores, on the idle cluster
}

func setup(t *testing.T) *bench {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make bench`")
	}
	ctrllog.SetLogger(logr.Discard()) // the operator's own log is what matters, in manager.log
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	root := testenv.RepoRoot()
	tmp := t.TempDir()
	b := &bench{t: t, ctx: ctx, root: root, out: filepath.Dir(resultsFile(root)), bin: filepath.Join(tmp, "bin"), settings: loadSettings(),
		keys: map[string]string{"basic": "bench-basic-key-0123456789", "kit": "bench-kit-key-0123456789", "ak": "bench-ak", "sk": "bench-sk"}}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := rig.Build(ctx, root, b.bin, "manager", "koosim"); err != nil {
		t.Fatal(err)
	}
	b.auditOn = filepath.Join(tmp, "audit-policy.yaml")
	if err := os.WriteFile(b.auditOn, []byte(auditPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var err error
	b.cluster, err = rig.StartCluster(ctx, rig.ClusterConfig{
		Root: root, Assets: assets, State: filepath.Join(tmp, "cluster"),
		EtcdPort: 29379, APIPort: 29443, KCMPort: 29257, SchedulerPort: 29259,
		// Enough Pod room for every instance's replica, and kcm fast enough that Deployments
		// becoming Available measures the operator, not kcm's default 20 requests/s.
		Nodes: 4, NodePods: (b.settings.instances/4 + 1) * 2, NodeCPU: b.settings.instances/4 + 32, ControllerQPS: 400,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.cluster.Stop(); err != nil {
			t.Log(err)
		}
	})
	t.Logf("cluster up in %s", time.Since(start).Round(100*time.Millisecond))
	if err := b.cluster.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	b.installBareCRD()
	b.awaitGCMonitors()
	b.koo = simulator.NewOpenAPIServer(b.keys["ak"], b.keys["sk"])
	openAPI := serve(t, b.koo)
	keysDir := filepath.Join(tmp, "keys")
	if err := rig.WriteKeys(keysDir, b.keys); err != nil {
		t.Fatal(err)
	}
	b.ready = watchReadiness(t, ctx, b.cluster)
	b.op, err = rig.StartOperator(ctx, rig.OperatorConfig{
		Binary: filepath.Join(b.bin, "manager"), Kubeconfig: b.cluster.Kubeconfig("operator"), KeysDir: keysDir,
		OpenAPIURL: openAPI, Metrics: true, Pprof: true, Args: b.settings.operatorArgs, Env: b.settings.operatorEnv,
		LogFile: filepath.Join(b.out, "manager.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.op.Stop)
	return b
}

// registerOrders makes the Query Order stand-in know the orders of a load run; each buys the
// sample plan testenv.BasicPlan.
func (b *bench) registerOrders(prefix string, n int) {
	expire := time.Now().AddDate(1, 0, 0)
	for i := range n {
		id := simulator.LoadOrderID(prefix, i)
		b.koo.RegisterOrder(openapi.Order{OrderID: id, OrderType: openapi.OrderTypeNew, CreateTime: time.Now(),
			Lines: []openapi.OrderLine{{OrderLineID: simulator.MockLineID(id), ChargingMode: openapi.ChargingPeriod,
				PeriodType: openapi.PeriodMonth, PeriodNum: 1, ExpireTime: expire,
				Products: []openapi.Product{{ProductID: testenv.BasicProduct, SKUCode: testenv.BasicSKU, ProductName: "bench"}}}}})
	}
}

// readiness follows every MarketplaceInstance through a watch and remembers when each first
// became Ready, so that waiting costs the API server one watch, not a list per poll.
type readiness struct {
	mu    sync.Mutex
	ready map[string]time.Time
	seen  map[string]bool
}

func watchReadiness(t *testing.T, ctx context.Context, c *rig.Cluster) *readiness {
	rc, err := c.RESTConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	informers, err := cache.New(rc, cache.Options{Scheme: c.Admin.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	inf, err := informers.GetInformer(ctx, &saasv1alpha1.MarketplaceInstance{})
	if err != nil {
		t.Fatal(err)
	}
	r := &readiness{ready: map[string]time.Time{}, seen: map[string]bool{}}
	observe := func(obj any) {
		inst, ok := obj.(*saasv1alpha1.MarketplaceInstance)
		if !ok {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen[inst.Name] = true
		if _, done := r.ready[inst.Name]; !done && meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionReady) {
			r.ready[inst.Name] = time.Now()
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: observe, UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("the readiness watch did not sync")
	}
	return r
}

// readyAt reports when each named instance became Ready; ok is false while any is not.
func (r *readiness) readyAt(names []string) (times []time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		at, done := r.ready[n]
		if !done {
			return nil, false
		}
		times = append(times, at)
	}
	return times, true
}

func (r *readiness) count() (seen, ready int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), len(r.ready)
}

// awaitReady waits until every named instance is Ready and returns when each became so.
func (b *bench) awaitReady(names []string, timeout time.Duration) []time.Time {
	var times []time.Time
	NewWithT(b.t).Eventually(func() bool {
		var ok bool
		times, ok = b.ready.readyAt(names)
		return ok
	}).WithTimeout(timeout).WithPolling(200*time.Millisecond).Should(BeTrue(), func() string {
		seen, ready := b.ready.count()
		return fmt.Sprintf("instances not Ready after %s (%d seen, %d Ready in all)\n%s", timeout, seen, ready, b.op.Tail(30))
	})
	return times
}

// loadNames are the instance names a newInstance load run with this prefix creates.
func loadNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = instanceName(simulator.LoadOrderID(prefix, i))
	}
	return names
}

func (b *bench) metrics() map[string]float64 {
	m, err := b.op.Metrics(b.ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	return m
}

// writes is how many write requests the operator has sent to the API server.
func writes(m map[string]float64) float64 {
	return sumVerbs(m, "rest_client_requests_total", "method", "POST", "PUT", "PATCH", "DELETE")
}

// sumVerbs adds a request counter's samples over the given values of its verb label.
func sumVerbs(m map[string]float64, metric, label string, verbs ...string) float64 {
	var n float64
	for _, verb := range verbs {
		n += rig.Sum(m, metric, label+`="`+verb+`"`)
	}
	return n
}

func mib(bytes int64) string { return strconv.FormatFloat(float64(bytes)/(1<<20), 'f', 0, 64) + " MiB" }

func instanceName(orderID string) string { return webhook.InstanceName(simulator.MockLineID(orderID)) }

func serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
