package instance_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/controllers/instance"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
)

const (
	testAK = "test-ak"
	testSK = "test-sk"
)

var (
	env      *testenv.Env
	k8s      client.Client
	koo      *simulator.OpenAPIServer
	orders   openapi.OrderQuerier
	orderSeq atomic.Int64
)

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	if err := env.InstallAccess(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	koo = simulator.NewOpenAPIServer(testAK, testSK)
	srv := httptest.NewServer(koo)
	orders, err = openapi.NewClient(openapi.Config{Endpoint: srv.URL, AK: testAK, SK: testSK, Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := testenv.CreateSamplePlans(context.Background(), k8s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	srv.Close()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// countingClient counts the API writes of the reconciler (creates, patches, applies,
// deletes, status patches), for the figures the tests report; only, when set, limits the
// count to the objects it accepts.
type countingClient struct {
	client.Client
	n    *atomic.Int64
	only func(name, namespace string) bool
}

func (c countingClient) count(obj any) {
	o, ok := obj.(interface {
		GetName() string
		GetNamespace() string
	})
	if c.only == nil || !ok || c.only(o.GetName(), o.GetNamespace()) {
		c.n.Add(1)
	}
}

func (c countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.count(obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c countingClient) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.count(obj)
	return c.Client.Patch(ctx, obj, p, opts...)
}

func (c countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.count(obj)
	return c.Client.Apply(ctx, obj, opts...)
}

func (c countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.count(obj)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c countingClient) Status() client.SubResourceWriter {
	return countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c countingClient
}

func (s countingStatus) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.count(obj)
	return s.SubResourceWriter.Patch(ctx, obj, p, opts...)
}

// operator is one running manager with the instance reconciler.
type operator struct {
	writes atomic.Int64
	stop   func()
}

// reconciles reads the controller's reconcile counter from the controller-runtime metrics.
func reconciles(t *testing.T) float64 {
	return controllerCounter(t, "controller_runtime_reconcile_total")
}

// reconcileErrors reads the controller's counter of reconciles that returned an error.
func reconcileErrors(t *testing.T) float64 {
	return controllerCounter(t, "controller_runtime_reconcile_errors_total")
}

func controllerCounter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "marketplaceinstance" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// startOperator runs a manager until the test ends or stop is called.
// wrap, if given, stands between the reconciler and its client (to inject stale reads).
func startOperator(t *testing.T, opts instance.Options, wrap ...func(client.Client) client.Client) *operator {
	t.Helper()
	op := &operator{}
	mgr, err := ctrl.NewManager(env.ManagerConfig, ctrl.Options{
		Scheme:     env.Scheme,
		Cache:      managercache.Options(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if opts.OrderBackoffBase == 0 {
		opts.OrderBackoffBase = 200 * time.Millisecond
	}
	var c client.Client = countingClient{Client: mgr.GetClient(), n: &op.writes}
	for _, w := range wrap {
		c = w(c)
	}
	r := &instance.Reconciler{
		Client:    c,
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("marketplace-operator"),
		Orders:    orders,
		Clock:     clock.RealClock{},
		Options:   opts,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	var once atomic.Bool
	op.stop = func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	t.Cleanup(op.stop)
	return op
}

// order registers a fresh order for sku with the simulator and returns an instance for it.
func order(t *testing.T, productID, sku string, mutate ...func(*saasv1alpha1.MarketplaceInstance)) *saasv1alpha1.MarketplaceInstance {
	t.Helper()
	n := orderSeq.Add(1)
	orderID := fmt.Sprintf("CS%s%04d", time.Now().UTC().Format("060102150405"), n)
	registerOrder(orderID, productID, sku)
	inst := &saasv1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("test-%04d-%s", n, t.Name()[4:min(len(t.Name()), 20)])},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{
			InstanceID: fmt.Sprintf("inst-%d-%d", n, time.Now().UnixNano()),
			Order:      saasv1alpha1.OrderReference{OrderID: orderID, OrderLineID: orderID + "-000001"},
			State:      saasv1alpha1.StateActive,
		},
	}
	inst.Name = dnsLabel(inst.Name)
	for _, m := range mutate {
		m(inst)
	}
	return inst
}

func registerOrder(orderID, productID, sku string) {
	koo.RegisterOrder(openapi.Order{
		OrderID: orderID, OrderType: "NEW", CreateTime: time.Now().UTC(),
		Lines: []openapi.OrderLine{{
			OrderLineID: orderID + "-000001", ChargingMode: "PERIOD", PeriodType: "month", PeriodNum: 1,
			ExpireTime: time.Now().UTC().AddDate(0, 1, 0),
			Products:   []openapi.Product{{ProductID: productID, SKUCode: sku, ProductName: "demo"}},
		}},
	})
}

func dnsLabel(s string) string {
	out := []byte{}
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			out = append(out, c)
		}
	}
	for len(out) > 0 && out[len(out)-1] == '-' {
		out = out[:len(out)-1]
	}
	return string(out)
}

// create creates the instance and removes it (finalizer included) when the test ends.
func create(t *testing.T, inst *saasv1alpha1.MarketplaceInstance) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, inst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.ForceDelete(k8s, inst.Name) })
}

func get(g Gomega, name string) *saasv1alpha1.MarketplaceInstance {
	return testenv.GetInstance(g, k8s, name)
}

func cond(inst *saasv1alpha1.MarketplaceInstance, t string) *metav1.Condition {
	return meta.FindStatusCondition(inst.Status.Conditions, t)
}

// haveCondition matches an instance whose condition t has the status and reason, and describes
// the current conditions when it fails.
func expectCondition(g Gomega, inst *saasv1alpha1.MarketplaceInstance, t string, status metav1.ConditionStatus, reason string) {
	c := cond(inst, t)
	g.Expect(c).NotTo(BeNil(), "condition %s missing; conditions: %+v", t, inst.Status.Conditions)
	g.Expect(c.Status).To(Equal(status), "condition %s: %+v", t, c)
	if reason != "" {
		g.Expect(c.Reason).To(Equal(reason), "condition %s: %+v", t, c)
	}
	g.Expect(c.ObservedGeneration).To(Equal(inst.Generation), "condition %s observedGeneration", t)
}

func waitReady(t *testing.T, name string) *saasv1alpha1.MarketplaceInstance {
	t.Helper()
	return testenv.WaitReady(t, k8s, name)
}

func deployment(g Gomega, ns, name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
	return d
}

func notFound(g Gomega, obj client.Object) {
	err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s: want NotFound, got %v", obj, obj.GetName(), err)
}

// completeJob plays the Job controller for the backup Job.
func completeJob(g Gomega, ns string) {
	g.Expect(testenv.CompleteJob(context.Background(), k8s, ns, render.BackupJobName)).To(Succeed())
}

// finalizeNamespace plays the namespace controller, which envtest does not run: a namespace
// being deleted loses its finalizer and goes.
func finalizeNamespace(g Gomega, name string) {
	g.Expect(env.FinalizeNamespace(context.Background(), name)).To(Succeed())
}
