//go:build chaos

// Package chaos proves that the operator keeps its promises when its own processes and the
// control plane fail under it: the manager SIGKILLed at random moments while buyers go through
// their lifecycle, the leader of two replicas killed mid-run, and the API server restarted while
// KooGallery's calls arrive. KooGallery is the spec-following simulator with its retries; the
// verdict is the end state seen through the API server, never a wall-clock time (times are
// printed in the summary, not asserted). Everything runs on one full local cluster
// (internal/rig); every wait has a deadline and every process is stopped, even on failure.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// The chaos cluster's ports differ from e2e's, make dev's and the benchmark suite's, so they can
// run side by side.
const (
	etcdPort, apiPort, kcmPort, schedulerPort = 28379, 28443, 28257, 28259
	basicKey                                  = "chaos-basic-key-0123456789"
	kitKey                                    = "chaos-kit-key-0123456789"
	openAPIAK, openAPISK                      = "chaos-ak", "chaos-sk"
	// suiteDeadline stops everything (processes and cluster) even if a test hangs, before
	// `go test -timeout` (30m in the Makefile) would kill the binary without any cleanup.
	suiteDeadline = 25 * time.Minute
)

// The replicas of the sample plans' workloads: upgrading moves a tenant from testenv.BasicPlan
// (1 replica) to testenv.ProPlan (3).
const (
	basicReplicas = 1
	proReplicas   = 3
)

// retrySchedule compresses KooGallery's automatic retries (§1.10: once an hour for 1 to 3 hours)
// into about 90 s. What the compression keeps is the relation that matters: KooGallery's retry
// window is far longer than a Pod restart or an API server restart, so a retryable failure is
// never the last word. The simulator applies it to every activity KooGallery retries (create,
// upgrade, refresh, status change, release).
var retrySchedule = func() []time.Duration {
	s := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
	for range 17 {
		s = append(s, 5*time.Second)
	}
	return s
}()

var (
	root    = testenv.RepoRoot()
	cluster *rig.Cluster
	admin   client.Client
	manager string // the manager binary built for this run
	keysDir string
	logDir  string
	koo     *simulator.OpenAPIServer
	kooURL  string
	seed    uint64
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return 0, errors.New("KUBEBUILDER_ASSETS is not set: run `make test-chaos`")
	}
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	var err error
	if seed, err = chaosSeed(); err != nil {
		return 0, err
	}
	fmt.Printf("chaos: seed %d (CHAOS_SEED=%d replays the buyers' mix and the kill delays)\n", seed, seed)
	tmp, err := os.MkdirTemp("", "mpo-chaos-")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), suiteDeadline)
	defer cancel()
	keep := false
	defer func() {
		if keep {
			fmt.Fprintf(os.Stderr, "chaos: logs and cluster state kept in %s\n", tmp)
			return
		}
		_ = os.RemoveAll(tmp)
	}()
	start := time.Now()
	manager, keysDir, logDir = filepath.Join(tmp, "bin", "manager"), filepath.Join(tmp, "keys"), filepath.Join(tmp, "logs")
	if err := rig.Build(ctx, root, filepath.Dir(manager), "manager"); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return 0, err
	}
	if err := rig.WriteKeys(keysDir, map[string]string{"basic": basicKey, "kit": kitKey, "ak": openAPIAK, "sk": openAPISK}); err != nil {
		return 0, err
	}
	cluster, err = rig.StartCluster(ctx, rig.ClusterConfig{
		Root: root, Assets: assets, State: filepath.Join(tmp, "cluster"),
		EtcdPort: etcdPort, APIPort: apiPort, KCMPort: kcmPort, SchedulerPort: schedulerPort,
		// Room for every tenant's Pods, and kcm fast enough that it is not what the suite measures.
		Nodes: 2, NodePods: 1000, ControllerQPS: 100,
	})
	if err != nil {
		keep = true
		return 0, err
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
		}
	}()
	watchdog := time.AfterFunc(suiteDeadline, func() {
		fmt.Fprintf(os.Stderr, "chaos: the suite ran past %s; stopping every process and the cluster\n", suiteDeadline)
		stopAll()
		os.Exit(2)
	})
	defer watchdog.Stop()
	admin = cluster.Admin
	if err := cluster.InstallCRDs(ctx); err != nil {
		keep = true
		return 0, err
	}
	koo = simulator.NewOpenAPIServer(openAPIAK, openAPISK)
	hs := httptest.NewServer(koo)
	defer hs.Close()
	kooURL = hs.URL
	fmt.Printf("chaos: manager built and cluster up in %s\n", time.Since(start).Round(100*time.Millisecond))

	code := m.Run()
	keep = code != 0
	writeSummary(os.Stdout, time.Since(start))
	return code, nil
}

// chaosSeed is CHAOS_SEED, or a fresh one.
func chaosSeed() (uint64, error) {
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CHAOS_SEED: %w", err)
		}
		return s, nil
	}
	return rand.Uint64() % 1_000_000, nil //nolint:gosec // a replayable test seed, not a secret
}

// running lists every manager the suite started, so the watchdog can stop them.
var running struct {
	sync.Mutex
	ops []*rig.Operator
}

func stopAll() {
	running.Lock()
	defer running.Unlock()
	for _, op := range running.ops {
		op.Kill()
	}
	if cluster != nil {
		_ = cluster.Stop()
	}
}

// startOperator runs a manager out of process against the chaos cluster and stops it when the
// test ends. Its log goes to the suite's log folder and, on failure, into the test log.
func startOperator(t *testing.T, ctx context.Context, name, leaseNamespace string) *rig.Operator {
	t.Helper()
	op, err := rig.StartOperator(ctx, rig.OperatorConfig{
		Binary: manager, Kubeconfig: cluster.Kubeconfig("operator"), KeysDir: keysDir, OpenAPIURL: kooURL,
		LeaseNamespace: leaseNamespace, Metrics: leaseNamespace != "",
		LogFile: filepath.Join(logDir, name+".log"),
	})
	if err != nil {
		t.Fatalf("starting manager %s: %v", name, err)
	}
	running.Lock()
	running.ops = append(running.ops, op)
	running.Unlock()
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			t.Logf("manager %s log (last lines):\n%s", name, op.Tail(40))
		}
	})
	return op
}

// startScenario bounds a scenario (every wait inside it inherits the deadline) and gives it its
// row of the summary table.
func startScenario(t *testing.T, name string, d time.Duration) (context.Context, *summaryRow) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	row := &summaryRow{scenario: name}
	report(t, row)
	return ctx, row
}

// simulatorHTTP keeps enough idle connections for the concurrent buyers; each attempt still has
// KooGallery's 5 s timeout.
var simulatorHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}

// newSimulator plays KooGallery against a marketplace endpoint with the compressed retries;
// queryInstance is polled every 500 ms after an asynchronous create.
func newSimulator(t *testing.T, baseURL string) *simulator.Simulator {
	t.Helper()
	return newSimulatorWith(t, baseURL, retrySchedule)
}

func newSimulatorWith(t *testing.T, baseURL string, retries []time.Duration) *simulator.Simulator {
	t.Helper()
	sim, err := simulator.New(simulator.Config{
		ProductionURL: baseURL + "/saasproduce", BasicKey: []byte(basicKey), KitKey: []byte(kitKey),
		HTTPClient: simulatorHTTP, RetrySchedule: retries,
		PollInterval: 500 * time.Millisecond, PollTimeout: 5 * time.Minute, MaxExchanges: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

// registerOrder makes Query Order know an order line for one of the sample plans' SKUs.
func registerOrder(orderID, productID, sku string) {
	now := time.Now().UTC()
	koo.RegisterOrder(openapi.Order{
		OrderID: orderID, OrderType: openapi.OrderTypeNew, CreateTime: now,
		Lines: []openapi.OrderLine{{
			OrderLineID: orderID + "-000001", ChargingMode: openapi.ChargingPeriod, PeriodType: openapi.PeriodYear, PeriodNum: 1,
			ExpireTime: now.AddDate(1, 0, 0),
			Products:   []openapi.Product{{ProductID: productID, SKUCode: sku, ProductName: "chaos"}},
		}},
	})
}

// traffic tallies the HTTP attempts of simulators: every exchange, the retries among them, and
// their answers.
type traffic struct {
	attempts, retries int
	answers           map[string]int
}

func trafficOf(sims ...*simulator.Simulator) traffic {
	tr := traffic{answers: map[string]int{}}
	for _, s := range sims {
		for _, e := range s.Exchanges() {
			tr.attempts++
			if e.Attempt > 1 {
				tr.retries++
			}
			tr.answers[answerOf(e)]++
		}
	}
	return tr
}

// answerNone labels an attempt that got no answer: refused, cut off or timed out.
const answerNone = "no-answer"

// answerOf labels an attempt: its result code, else what went wrong on the wire.
func answerOf(e simulator.Exchange) string {
	switch {
	case e.ResultCode != "":
		return e.ResultCode
	case e.HTTPStatus != 0 && e.HTTPStatus != http.StatusOK:
		return "http-" + strconv.Itoa(e.HTTPStatus)
	case strings.HasPrefix(e.Err, "transport"):
		return answerNone
	}
	return "bad-reply"
}

// retryable are the outcomes of an attempt that KooGallery retries (or polls on). Anything else
// ends a call for good (000002, 000003 — which to a renewal may cost the buyer the service —,
// 000100…) or is a reply KooGallery cannot trust; a retry that later succeeds would hide it.
// http-502 is the balancer's answer for a call cut off by a kill.
var retryable = []string{koogallery.ResultSuccess, koogallery.ResultProcessing, koogallery.ResultInternalError, answerNone, "http-502"}

// expectRetryable checks every attempt the simulators made.
func expectRetryable(g Gomega, sims ...*simulator.Simulator) {
	for _, s := range sims {
		for _, e := range s.Exchanges() {
			g.Expect(answerOf(e)).To(BeElementOf(retryable), "%s attempt %d: %+v", e.Activity, e.Attempt, e)
		}
	}
}

// outcomes counts the final answer of every logical call (a create's own answer, the poll that
// ended it, each lifecycle call), whatever the attempts before it were.
type outcomes struct {
	mu    sync.Mutex
	final map[string]int
	calls int
}

func (o *outcomes) add(code string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.final == nil {
		o.final = map[string]int{}
	}
	o.final[code]++
	o.calls++
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return rig.Counts(o.final)
}

// summaryRow is one scenario's line of the table printed after the suite. Its traffic and
// final codes are read from sims and out when the test ends, failed or not.
type summaryRow struct {
	scenario   string
	instances  int
	disruption string
	sims       []*simulator.Simulator
	out        *outcomes
	traffic    traffic
	final      string
	recovery   string
	verdict    string
}

var summary struct {
	sync.Mutex
	rows []*summaryRow
}

// report adds the scenario's row; its verdict is decided when the test has finished.
func report(t *testing.T, row *summaryRow) {
	t.Cleanup(func() {
		row.traffic = trafficOf(row.sims...)
		if row.out != nil {
			row.final = row.out.String()
		}
		row.verdict = "PASS"
		if t.Failed() {
			row.verdict = "FAIL"
		}
		summary.Lock()
		summary.rows = append(summary.rows, row)
		summary.Unlock()
	})
}

func writeSummary(w io.Writer, elapsed time.Duration) {
	summary.Lock()
	defer summary.Unlock()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nchaos summary (seed %d, suite %s)\n", seed, elapsed.Round(time.Second))
	fmt.Fprintln(tw, "SCENARIO\tINSTANCES\tKILLS/RESTARTS\tCALLBACKS\tRETRIES\tFINAL CODES\tRECOVERY\tVERDICT")
	for _, r := range summary.rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", r.scenario, r.instances, r.disruption,
			r.traffic.attempts, r.traffic.retries, r.final, r.recovery, r.verdict)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "CALLBACKS counts HTTP attempts (polls included); RETRIES the attempts after a failed one;")
	fmt.Fprintln(w, "FINAL CODES the last answer of each logical call (000004: an asynchronous create, then polled to 000000).")
}

// expectAccepted checks a lifecycle call's outcome and records its final code.
func expectAccepted(out *outcomes, what string, resp *simulator.Response, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	out.add(resp.Reply.ResultCode)
	if resp.Reply.ResultCode != koogallery.ResultSuccess {
		return fmt.Errorf("%s: answered %s", what, resp.Reply.ResultCode)
	}
	return nil
}

// quantiles are the median and the maximum of ds.
func quantiles(ds []time.Duration) (p50, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)-1]
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

// eachOf runs f for every index below n, at most concurrency at a time, and returns the errors.
func eachOf(n, concurrency int, f func(i int) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, concurrency)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// noErrors fails the test with the first few errors of a batch of calls.
func noErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	if len(errs) > 0 {
		t.Fatalf("%s: %d call(s) not accepted; first: %v", what, len(errs), errors.Join(errs[:min(len(errs), 5)]...))
	}
}
