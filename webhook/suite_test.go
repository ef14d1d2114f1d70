package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
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
	"github.com/marketplace-operator/marketplace-operator/internal/keys"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

const (
	testAK = "suite-ak"
	testSK = "suite-sk"
)

var (
	basicKey = []byte("suite-basic-key-0123456789")
	kitKey   = []byte("suite-kit-key-0123456789")

	env      *testenv.Env
	k8s      client.Client
	server   *webhook.Server // the endpoint the suite calls, for tests of its internals
	koo      *simulator.OpenAPIServer
	endpoint string // the webhook's production URL
	sim      *simulator.Simulator
	rsaKey   *rsa.PrivateKey
	orderSeq atomic.Int64
)

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if env, err = testenv.Start(); err != nil {
		return 0, err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	k8s = env.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.InstallAccess(ctx); err != nil {
		return 0, err
	}
	if err := testenv.CreateSamplePlans(ctx, k8s); err != nil {
		return 0, err
	}
	koo = simulator.NewOpenAPIServer(testAK, testSK)
	kooSrv := httptest.NewServer(koo)
	defer kooSrv.Close()

	dir, err := os.MkdirTemp("", "webhook-keys-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := writeKeys(dir); err != nil {
		return 0, err
	}
	store, err := keys.NewStore(dir)
	if err != nil {
		return 0, err
	}
	orders, err := openapi.NewClient(openapi.Config{Endpoint: kooSrv.URL, Credentials: store.OpenAPICredentials, Timeout: 5 * time.Second})
	if err != nil {
		return 0, err
	}
	done, srv, err := startOperator(ctx, store, orders)
	if err != nil {
		return 0, err
	}
	defer func() { cancel(); <-done }()
	server = srv
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	endpoint = ts.URL + webhook.DefaultPath
	sim, err = simulator.New(simulator.Config{
		ProductionURL: endpoint, BasicKey: basicKey, KitKey: kitKey,
		RetrySchedule: []time.Duration{}, PollInterval: 100 * time.Millisecond, PollTimeout: 30 * time.Second,
	})
	if err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func writeKeys(dir string) error {
	var err error
	if rsaKey, err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
		return err
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	files := map[string][]byte{
		keys.FileBasic: append(append([]byte{}, basicKey...), '\n'), keys.FileKit: kitKey,
		keys.FileAK: []byte(testAK), keys.FileSK: []byte(testSK), keys.FileKitRSA: pemKey,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startOperator runs a manager with the instance reconciler and the webhook, as cmd/manager
// wires them.
func startOperator(ctx context.Context, store *keys.Store, orders openapi.OrderQuerier) (<-chan struct{}, *webhook.Server, error) {
	mgr, err := ctrl.NewManager(env.ManagerConfig, ctrl.Options{
		Scheme:     env.Scheme,
		Cache:      managercache.Options(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, nil, err
	}
	r := &instance.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("marketplace-operator"), Orders: orders, Clock: clock.RealClock{},
		Options: instance.Options{OrderBackoffBase: 200 * time.Millisecond},
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, nil, err
	}
	srv, err := webhook.NewServer(mgr, store, orders, webhook.Options{BindAddress: "127.0.0.1:0"})
	if err != nil {
		return nil, nil, err
	}
	if err := mgr.Add(store); err != nil {
		return nil, nil, err
	}
	// The real listener serves too (on a free port), so Start and graceful shutdown run.
	if err := mgr.Add(srv); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, nil, fmt.Errorf("cache did not sync")
	}
	return done, srv, nil
}

// newOrder registers a fresh order for the SKU with Query Order and returns its IDs.
func newOrder(productID, sku string) (orderID, lineID string) {
	n := orderSeq.Add(1)
	orderID = fmt.Sprintf("CS%s%04d", time.Now().UTC().Format("060102150405"), n)
	lineID = orderID + "-000001"
	koo.RegisterOrder(openapi.Order{
		OrderID: orderID, OrderType: openapi.OrderTypeNew, CreateTime: time.Now().UTC(),
		Lines: []openapi.OrderLine{{
			OrderLineID: lineID, ChargingMode: openapi.ChargingPeriod, PeriodType: openapi.PeriodMonth, PeriodNum: 1,
			ExpireTime: time.Now().UTC().AddDate(0, 1, 0),
			Products:   []openapi.Product{{ProductID: productID, SKUCode: sku, ProductName: "demo"}},
		}},
	})
	return orderID, lineID
}

func businessID() string { return fmt.Sprintf("biz-%d-%d", orderSeq.Add(1), time.Now().UnixNano()) }

// post sends one basic call signed with key at ts and returns the raw reply, after checking the
// transport contract every reply must meet.
func post(g Gomega, key, body []byte, ts time.Time, nonce string) []byte {
	q := koogallery.BasicQuery(key, body, nonce, koogallery.Timestamp(ts))
	return postRaw(g, endpoint+"?"+q.Encode(), nil, body)
}

// postRaw posts body and returns the reply, checking that it is JSON signed with the suite's key.
func postRaw(g Gomega, url string, header http.Header, body []byte) []byte {
	raw, replyHeader := postHTTP(g, url, header, body)
	g.Expect(replyHeader.Get("Content-Type")).To(Equal("application/json;charset=UTF-8"))
	signKey := basicKey
	if header.Get(koogallery.HeaderSign) != "" {
		signKey = kitKey
	}
	g.Expect(koogallery.VerifyBodySign([][]byte{signKey}, replyHeader.Get(koogallery.HeaderBodySign), raw)).To(Succeed())
	return raw
}

// postHTTP posts body with the headers and returns the reply's body and headers; the endpoint
// answers every call HTTP 200.
func postHTTP(g Gomega, url string, header http.Header, body []byte) ([]byte, http.Header) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	return raw, resp.Header
}

// send signs req now with the basic key and returns the reply decoded into out.
func send(g Gomega, req koogallery.BasicRequest, out any) {
	sendAt(g, req, time.Now(), out)
}

func sendAt(g Gomega, req koogallery.BasicRequest, ts time.Time, out any) {
	body, err := koogallery.MarshalRequest(req)
	g.Expect(err).NotTo(HaveOccurred())
	raw := post(g, basicKey, body, ts, simulator.RandomNonce())
	g.Expect(json.Unmarshal(raw, out)).To(Succeed(), "reply %s", raw)
}

func code(g Gomega, req koogallery.BasicRequest) koogallery.Reply {
	var r koogallery.Reply
	send(g, req, &r)
	return r
}

// kitSend signs a kit sync now with the kit key.
func kitSend(g Gomega, req koogallery.KitRequest) koogallery.Reply {
	body, err := koogallery.MarshalKitRequest(req)
	g.Expect(err).NotTo(HaveOccurred())
	h := http.Header{}
	koogallery.SetKitHeaders(h, kitKey, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	raw := postRaw(g, endpoint+req.Kind().Path(), h, body)
	var r koogallery.Reply
	g.Expect(json.Unmarshal(raw, &r)).To(Succeed())
	return r
}

// instancesOfOrder counts the instances made for the order.
func instancesOfOrder(g Gomega, orderID string) int {
	list := &saasv1alpha1.MarketplaceInstanceList{}
	g.Expect(k8s.List(context.Background(), list)).To(Succeed())
	n := 0
	for _, it := range list.Items {
		if it.Spec.Order.OrderID == orderID {
			n++
		}
	}
	return n
}

func getInstance(g Gomega, name string) *saasv1alpha1.MarketplaceInstance {
	return testenv.GetInstance(g, k8s, name)
}

func waitReady(t *testing.T, name string) *saasv1alpha1.MarketplaceInstance {
	t.Helper()
	return testenv.WaitReady(t, k8s, name)
}

// createReady creates an instance through newInstance and drives it to Ready.
func createReady(t *testing.T, productID, sku string) (inst *saasv1alpha1.MarketplaceInstance, orderID string) {
	t.Helper()
	g := NewWithT(t)
	orderID, lineID := newOrder(productID, sku)
	var rep koogallery.NewInstanceReply
	send(g, &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: businessID()}, &rep)
	g.Expect(rep.ResultCode).To(Equal(koogallery.ResultProcessing))
	name := webhook.InstanceName(lineID)
	t.Cleanup(func() { release(name) })
	return waitReady(t, name), orderID
}

// release deletes an instance left by a test and lets its namespace go.
func release(name string) {
	ctx := context.Background()
	inst := &saasv1alpha1.MarketplaceInstance{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: name}, inst); err != nil {
		return
	}
	_ = k8s.Delete(ctx, inst)
	if inst.Status.Namespace != "" {
		// Best effort: a test's leftovers must not fail the next test.
		_ = NewGomega(func(string, ...int) {}).Eventually(func() error {
			return env.FinalizeNamespace(ctx, inst.Status.Namespace)
		}).WithTimeout(10 * time.Second).Should(Succeed())
	}
}

// recordedCalls is every call recorded on inst: the endpoint records a call in the write that
// applies it, and the reconciler copies it into status.history soon after.
func recordedCalls(inst *saasv1alpha1.MarketplaceInstance) []saasv1alpha1.Operation {
	h, _ := saasv1alpha1.MergeCalls(inst.Status.History, saasv1alpha1.PendingCalls(inst))
	return h
}

func historyOf(inst *saasv1alpha1.MarketplaceInstance) []string {
	var out []string
	for _, op := range recordedCalls(inst) {
		out = append(out, op.Activity+": "+op.Detail)
	}
	return out
}
