package usage_test

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
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/controllers/instance"
	"github.com/marketplace-operator/marketplace-operator/controllers/usage"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

const (
	testAK, testSK = "usage-ak", "usage-sk"
	usageKey       = "usage-seller-key-0123456789"
	// The sample plans of config/samples that are pay-per-use, and their SKUs.
	onDemandPlanFile = "saas_v1alpha1_marketplaceplan_ondemand.yaml"
	onDemandProduct  = "OFFI000000000000005"
	onDemandSKU      = "demo-ondemand-hourly"
	meteredPlanFile  = "saas_v1alpha1_marketplaceplan_metered.yaml"
	meteredProduct   = "OFFI000000000000006"
	meteredSKU       = "demo-ondemand-requests"
)

var (
	env      *testenv.Env
	k8s      client.Client
	koo      *simulator.OpenAPIServer
	api      *openapi.Client
	orderSeq atomic.Int64
)

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	var err error
	if env, err = testenv.Start(); err != nil {
		return 1, err
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	ctx := context.Background()
	if err := env.InstallAccess(ctx); err != nil {
		return 1, err
	}
	koo = simulator.NewOpenAPIServer(testAK, testSK, simulator.WithUsageKey([]byte(usageKey)))
	srv := httptest.NewServer(koo)
	defer srv.Close()
	api, err = openapi.NewClient(openapi.Config{Endpoint: srv.URL, AK: testAK, SK: testSK, UsageKey: []byte(usageKey),
		Timeout: 5 * time.Second, Retries: 1, RetryBase: 10 * time.Millisecond})
	if err != nil {
		return 1, err
	}
	for _, f := range []string{onDemandPlanFile, meteredPlanFile} {
		plan, err := testenv.SamplePlan(f)
		if err != nil {
			return 1, err
		}
		if err := k8s.Create(ctx, plan); err != nil {
			return 1, fmt.Errorf("creating %s: %w", f, err)
		}
	}
	return m.Run(), nil
}

// pusherFunc lets a test stand between the controller and KooGallery.
type pusherFunc func(ctx context.Context, records []openapi.UsageRecord) error

func (f pusherFunc) PushUsage(ctx context.Context, records []openapi.UsageRecord) error {
	return f(ctx, records)
}

// startOperator runs a manager with the instance and usage controllers, under the manager's
// RBAC, until the test ends or the returned stop is called.
func startOperator(t *testing.T, interval time.Duration, pusher usage.Pusher) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.ManagerConfig, ctrl.Options{
		Scheme: env.Scheme, Cache: managercache.Options(), Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if pusher == nil {
		pusher = api
	}
	ctx, cancel := context.WithCancel(context.Background())
	ir := &instance.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Orders: api, Clock: clock.RealClock{}, Options: instance.Options{OrderBackoffBase: 200 * time.Millisecond}}
	if err := ir.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	ur := &usage.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Pusher: pusher, Clock: clock.RealClock{},
		Options: usage.Options{Interval: interval, BackoffBase: 200 * time.Millisecond}}
	if err := ur.SetupWithManager(mgr); err != nil {
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
	stop = func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// order registers a pay-per-use order for sku and its instance with the simulator, and returns
// the instance to create.
func order(t *testing.T, productID, sku string) *saasv1alpha1.MarketplaceInstance {
	t.Helper()
	n := orderSeq.Add(1)
	orderID := fmt.Sprintf("CSU%s%04d", time.Now().UTC().Format("060102150405"), n)
	koo.RegisterOrder(openapi.Order{
		OrderID: orderID, OrderType: "NEW", CreateTime: time.Now().UTC(),
		Lines: []openapi.OrderLine{{OrderLineID: orderID + "-000001", ChargingMode: openapi.ChargingOnDemand,
			Products: []openapi.Product{{ProductID: productID, SKUCode: sku, ProductName: "demo"}}}},
	})
	inst := &saasv1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("usage-%04d-%d", n, time.Now().UnixNano()%100000)},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{
			InstanceID: fmt.Sprintf("ondemand-%d-%d", n, time.Now().UnixNano()),
			Order:      saasv1alpha1.OrderReference{OrderID: orderID, OrderLineID: orderID + "-000001"},
			State:      saasv1alpha1.StateActive,
		},
	}
	koo.RegisterInstance(inst.Spec.InstanceID, time.Now().Add(-time.Second))
	return inst
}

// create creates the instance and removes it, finalizers and all, when the test ends.
func create(t *testing.T, inst *saasv1alpha1.MarketplaceInstance) {
	t.Helper()
	if err := k8s.Create(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.ForceDelete(k8s, inst.Name) })
}

func get(g Gomega, name string) *saasv1alpha1.MarketplaceInstance {
	return testenv.GetInstance(g, k8s, name)
}

func waitReady(t *testing.T, name string) *saasv1alpha1.MarketplaceInstance {
	t.Helper()
	return testenv.WaitReady(t, k8s, name)
}

// readySince is when the instance last became Ready, or stopped being.
func readySince(inst *saasv1alpha1.MarketplaceInstance) time.Time {
	return meta.FindStatusCondition(inst.Status.Conditions, saasv1alpha1.ConditionReady).LastTransitionTime.UTC()
}

// release deletes the instance and plays the namespace controller until it is gone.
func release(t *testing.T, name string) time.Time {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	g.Expect(k8s.Delete(ctx, &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	releasedAt := get(g, name).DeletionTimestamp.UTC()
	g.Eventually(func(g Gomega) {
		inst := &saasv1alpha1.MarketplaceInstance{}
		err := k8s.Get(ctx, client.ObjectKey{Name: name}, inst)
		if err == nil && inst.Status.Namespace != "" {
			finalizeNamespace(g, inst.Status.Namespace)
		}
		g.Expect(client.IgnoreNotFound(err)).To(Succeed())
		g.Expect(err).To(HaveOccurred(), "instance still there: finalizers %v, usage %+v", inst.Finalizers, inst.Status.Usage)
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	return releasedAt
}

// finalizeNamespace plays the namespace controller for a namespace being deleted: it deletes
// what the namespace holds of the usage channel, waits until that is gone (a finalizer may hold
// it), and then lets the namespace go.
func finalizeNamespace(g Gomega, name string) {
	ctx := context.Background()
	ns := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil || ns.DeletionTimestamp.IsZero() {
		return
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: saasv1alpha1.UsageConfigMap}}
	g.Expect(client.IgnoreNotFound(k8s.Delete(ctx, cm))).To(Succeed())
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(cm), cm); !apierrors.IsNotFound(err) {
		return
	}
	g.Expect(env.FinalizeNamespace(ctx, name)).To(Succeed())
}
