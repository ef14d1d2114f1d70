package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// These targets fuzz the handler the server serves (Server.Handler: routing, body limit,
// signature verification, parsing, the activities and the signed reply), called in memory.
//
// The store is controller-runtime's fake client, not envtest: one API server round trip per
// execution would cut the fuzzer's rate by orders of magnitude, and what is fuzzed is our code
// in front of the client. Each execution gets a fresh world (and so a fresh replay cache), so
// inputs are independent and a crasher replays alone. What depends on a real API server is
// covered by hostile_test.go and the integration tests.
//
// Run one target at a time, e.g.
//
//	go test -run '^$' -fuzz '^FuzzSignedBasic$' -fuzztime 5m -fuzzminimizetime 200x -parallel 1 ./webhook/
//
// Every fuzz process runs the package's TestMain, which starts envtest. A time-bounded
// minimization that runs out restarts the worker, and with it an API server: bound it by count.

// init keeps the fuzz worker's pipes to the fuzzing coordinator (descriptors 3 to 5, see
// internal/fuzz) from leaking into the processes TestMain starts (etcd, kube-apiserver): they
// would hold them open after the worker stops, and the coordinator, waiting for them to close,
// would hang instead of reporting what the worker found.
func init() {
	for _, arg := range os.Args[1:] {
		if arg == "-test.fuzzworker" || arg == "-test.fuzzworker=true" {
			for fd := 3; fd <= 5; fd++ {
				syscall.CloseOnExec(fd)
			}
		}
	}
}

// fuzzPassword is the tenant admin password of the fuzz world: the one place it may appear is
// appInfo.password in a successful queryInstance reply.
const fuzzPassword = "fuzz-tenant-Pa55word!"

// Instance IDs of the fuzz world, one per state an activity can meet.
const (
	fuzzReady      = "inst-ready"
	fuzzPending    = "inst-pending"
	fuzzFrozen     = "inst-frozen"
	fuzzReleasing  = "inst-releasing"
	fuzzUnservable = "inst-unservable"
)

// Limits of the raw target, small so that the fuzzer reaches them.
const (
	fuzzMaxBody    = 4 << 10
	fuzzMaxKitBody = 8 << 10
)

// fuzzStateCall is the signed timestamp of the last state call applied to the frozen instance:
// a call signed earlier is stale.
var fuzzStateCall = testNow.Add(-10 * time.Second)

var fuzzRSA = sync.OnceValue(func() *rsa.PrivateKey {
	// 2048 bits: the harness only needs a key, not KooGallery's 3072-bit minimum.
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// fuzzPlans are the sample plans (demo-basic, demo-pro), read once per process.
var fuzzPlans = sync.OnceValues(func() ([]saasv1alpha1.MarketplacePlan, error) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).Build()
	if err := testenv.CreateSamplePlans(ctx, c); err != nil {
		return nil, err
	}
	list := &saasv1alpha1.MarketplacePlanList{}
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	return list.Items, nil
})

func fuzzWorld(tb testing.TB) []client.Object {
	tb.Helper()
	plans, err := fuzzPlans()
	if err != nil {
		tb.Fatal(err)
	}
	ready := readyInstance("cs1-000001", fuzzReady)
	pending := readyInstance("cs2-000001", fuzzPending)
	pending.Spec.Order = saasv1alpha1.OrderReference{OrderID: "CS2", OrderLineID: "CS2-000001"}
	pending.Status = saasv1alpha1.MarketplaceInstanceStatus{}
	frozen := readyInstance("cs3-000001", fuzzFrozen)
	frozen.Spec.Order = saasv1alpha1.OrderReference{OrderID: "CS3", OrderLineID: "CS3-000001"}
	frozen.Spec.State = saasv1alpha1.StateFrozen
	expired := metav1.NewTime(testNow.Add(-48 * time.Hour))
	frozen.Spec.ExpireTime = &expired
	frozen.Annotations = map[string]string{AnnotationLastCallPrefix + string(aspectState): koogallery.Timestamp(fuzzStateCall)}
	releasing := readyInstance("cs4-000001", fuzzReleasing)
	releasing.Spec.Order = saasv1alpha1.OrderReference{OrderID: "CS4", OrderLineID: "CS4-000001"}
	deleted := metav1.NewTime(testNow.Add(-time.Minute))
	releasing.DeletionTimestamp = &deleted
	releasing.Finalizers = []string{saasv1alpha1.FinalizerRelease}
	unservable := readyInstance("cs5-000001", fuzzUnservable)
	unservable.Spec.Order = saasv1alpha1.OrderReference{OrderID: "CS5", OrderLineID: "CS5-000001"}
	unservable.Status = saasv1alpha1.MarketplaceInstanceStatus{Conditions: []metav1.Condition{{Type: saasv1alpha1.ConditionOrderResolved,
		Status: metav1.ConditionFalse, Reason: saasv1alpha1.ReasonUnknownSKU, Message: "no plan serves it", LastTransitionTime: metav1.NewTime(testNow)}}}

	objs := []client.Object{ready, pending, frozen, releasing, unservable,
		tenantNamespaceOf(ready),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "mpi-cs1-000001", Name: render.CredentialsSecretName, OwnerReferences: ownerRefs(ready)},
			Data: map[string][]byte{render.CredentialsUserNameKey: []byte("admin"), render.CredentialsPasswordKey: []byte(fuzzPassword)}},
		&corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "mpi-cs1-000001", Name: render.QuotaName, OwnerReferences: ownerRefs(ready)},
			Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1500m")}}},
	}
	for i := range plans {
		p := plans[i].DeepCopy()
		p.ResourceVersion = ""
		objs = append(objs, p)
	}
	return objs
}

// fuzzOrders is Query Order for debug creates: KooGallery's MOCK* orders exist, nothing else.
type fuzzOrders struct{}

func (fuzzOrders) QueryOrder(_ context.Context, orderID, _ string) (*openapi.Order, error) {
	if strings.HasPrefix(orderID, "MOCK") {
		return &openapi.Order{OrderID: orderID}, nil
	}
	return nil, &openapi.APIError{HTTPStatus: http.StatusOK, Code: openapi.CodeInstanceNotFound, Message: "order not found"}
}

// fuzzHarness is one execution's server, store and captured log.
type fuzzHarness struct {
	srv  *Server
	c    client.Client
	mu   sync.Mutex
	logs strings.Builder
}

func newFuzzHarness(t *testing.T, opts Options) *fuzzHarness {
	t.Helper()
	// No reconciler runs here: an order change is never delivered, so do not wait for it.
	opts.OrderChangeWait = time.Millisecond
	h := &fuzzHarness{}
	h.c = fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(fuzzWorld(t)...).
		WithStatusSubresource(&saasv1alpha1.MarketplaceInstance{}).
		WithIndex(&saasv1alpha1.MarketplaceInstance{}, InstanceIDIndex, indexInstanceID).
		WithIndex(&saasv1alpha1.MarketplaceInstance{}, OrderIDIndex, indexOrderIDs).
		WithIndex(&saasv1alpha1.MarketplaceInstance{}, UnresolvedIndex, indexUnresolved).
		Build()
	log := funcr.New(func(prefix, args string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
	opts.Clock = func() time.Time { return testNow }
	s, err := newServer(h.c, h.c, staticKeys{rsa: fuzzRSA()}, fuzzOrders{}, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = s
	return h
}

func (h *fuzzHarness) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, r)
	return w
}

func (h *fuzzHarness) log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.String()
}

// snapshot is every stored object's resourceVersion: equal snapshots mean nothing was written.
// The kit replay record is left out: a kit nonce is spent once verified and addressed to an
// instance, like the replay cache's, whether or not the data is then stored.
func (h *fuzzHarness) snapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range []client.ObjectList{&saasv1alpha1.MarketplaceInstanceList{}, &corev1.SecretList{}, &corev1.ConfigMapList{}} {
		if err := h.c.List(context.Background(), l); err != nil {
			t.Fatal(err)
		}
		err := meta.EachListItem(l, func(o k8sruntime.Object) error {
			obj := o.(client.Object)
			if _, ok := o.(*corev1.ConfigMap); ok && obj.GetName() == KitCallsConfigMap {
				return nil
			}
			out[fmt.Sprintf("%T %s/%s", o, obj.GetNamespace(), obj.GetName())] = obj.GetResourceVersion()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// specCodes are the result codes of the spec (§4) outside the License-only range.
var specCodes = map[string]bool{
	koogallery.ResultSuccess: true, koogallery.ResultAuthFailed: true, koogallery.ResultInvalidParam: true,
	koogallery.ResultInstanceNotFound: true, koogallery.ResultProcessing: true, koogallery.ResultInternalError: true,
	koogallery.ResultNoResource: true, koogallery.ResultMobileInvalid: true, koogallery.ResultEmailInvalid: true,
	koogallery.ResultAlreadyPurchased: true, koogallery.ResultProductError: true, koogallery.ResultAlreadySubscribed: true,
	koogallery.ResultSoldOut: true, koogallery.ResultEmailDomainExists: true,
}

// fuzzReply is every field a reply may carry; anything else fails the strict decode.
type fuzzReply struct {
	ResultCode  *string                   `json:"resultCode"`
	ResultMsg   string                    `json:"resultMsg"`
	InstanceID  *string                   `json:"instanceId"`
	Info        []koogallery.InstanceInfo `json:"info"`
	EncryptType string                    `json:"encryptType"`
}

func (r fuzzReply) code() string { return *r.ResultCode }

// checkReply checks the transport contract of a KooGallery reply: HTTP 200, JSON, ASCII only
// (non-ASCII is \u-escaped), only the documented fields, a result code from the spec, a
// resultMsg within 255 characters, and a Body-Sign made with key over the exact bytes.
func checkReply(t *testing.T, w *httptest.ResponseRecorder, key []byte) fuzzReply {
	t.Helper()
	body := w.Body.Bytes()
	if w.Code != http.StatusOK {
		t.Fatalf("HTTP %d, want 200: %q", w.Code, body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := koogallery.VerifyBodySign([][]byte{key}, w.Header().Get(koogallery.HeaderBodySign), body); err != nil {
		t.Fatalf("Body-Sign: %v (reply %q)", err, body)
	}
	for _, c := range body {
		if c >= utf8.RuneSelf {
			t.Fatalf("reply is not pure ASCII: %q", body)
		}
	}
	var rep fuzzReply
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("data after the reply object: %q", body)
	}
	if rep.ResultCode == nil || !specCodes[*rep.ResultCode] {
		t.Fatalf("result code not from the spec: %q", body)
	}
	if n := utf8.RuneCountInString(rep.ResultMsg); n > 255 {
		t.Fatalf("resultMsg is %d characters long", n)
	}
	return rep
}

// checkNoSecrets fails when a key, the tenant password (unless allowed) or the request's
// signature shows in the reply or the log. A value the input itself carries is not a leak:
// the caller knew it.
func (h *fuzzHarness) checkNoSecrets(t *testing.T, reply []byte, input []byte, sig string, passwordAllowed bool) {
	t.Helper()
	priv := fuzzRSA()
	secrets := map[string][]byte{
		"basic key":             testBasicKey,
		"kit key":               testKitKey,
		"RSA private exponent":  []byte(priv.D.String()),
		"RSA private key (DER)": []byte(base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(priv))[:64]),
		"tenant password":       []byte(fuzzPassword),
	}
	if sig != "" {
		secrets["request signature"] = []byte(sig)
	}
	logs := []byte(h.log())
	for name, s := range secrets {
		if bytes.Contains(input, s) {
			continue
		}
		if bytes.Contains(logs, s) {
			t.Fatalf("the log holds the %s", name)
		}
		if name == "tenant password" && passwordAllowed {
			continue
		}
		if bytes.Contains(reply, s) {
			t.Fatalf("the reply holds the %s: %q", name, reply)
		}
	}
	if strings.Contains(string(logs), "marketplace call panicked") {
		t.Fatalf("the handler panicked (recovered):\n%s", logs)
	}
}

func (h *fuzzHarness) checkUnchanged(t *testing.T, before map[string]string, why string) {
	t.Helper()
	after := h.snapshot(t)
	if len(after) != len(before) {
		t.Fatalf("%s, yet objects were created or deleted: %v -> %v", why, before, after)
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s, yet %s was written", why, k)
		}
	}
}

// routeOf is the interface a path is served on, from the documented routing: the production
// path, and the kit paths bare or appended to it.
func routeOf(path string) (kit, ok bool) {
	if k, found := koogallery.KitKindFromPath(path); found {
		prefix := strings.TrimSuffix(path, k.Path())
		return true, prefix == "" || prefix == DefaultPath
	}
	return false, path == DefaultPath
}

// rawRequest builds the request net/http would hand the handler for these parts, or nil when
// net/http would refuse it before any handler runs (bad method, target or header syntax).
func rawRequest(method, target, headers string, body []byte) *http.Request {
	if method == "" || strings.IndexFunc(method, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || !strings.HasPrefix(target, "/") {
		return nil
	}
	h := http.Header{}
	for _, line := range strings.Split(headers, "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.IndexFunc(k, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
			return nil
		}
		v = strings.Trim(v, " \t")
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return nil
			}
		}
		h.Add(k, v)
	}
	r := &http.Request{
		Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: "marketplace.example.com", RemoteAddr: "192.0.2.1:40000",
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	if strings.EqualFold(h.Get("Transfer-Encoding"), "chunked") {
		r.ContentLength = -1
	}
	return r.WithContext(context.Background())
}

func isTokenChar(r rune) bool {
	return r < utf8.RuneSelf && r > ' ' && r != 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

// FuzzHandlerRaw: whatever arrives unsigned (any method, path, query, headers and body), the
// answer is a signed 000001 or 000002 on our paths and a 404 elsewhere, and nothing is written.
func FuzzHandlerRaw(f *testing.F) {
	ts := koogallery.Timestamp(testNow)
	f.Add("POST", DefaultPath+"?signature=00&timestamp="+ts+"&nonce=n1", "Content-Type: application/json", []byte(`{"activity":"queryInstance","instanceId":"inst-ready"}`))
	f.Add("GET", DefaultPath, "", []byte(nil))
	f.Add("POST", koogallery.KitPathTenantSync, "X-Sign: 00\nX-Timestamp: "+ts+"\nX-Nonce: n", []byte(`{}`))
	f.Add("POST", "/elsewhere", "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, method, target, headers string, body []byte) {
		r := rawRequest(method, target, headers, body)
		if r == nil {
			return
		}
		h := newFuzzHarness(t, Options{MaxBodyBytes: fuzzMaxBody, MaxKitBodyBytes: fuzzMaxKitBody})
		before := h.snapshot(t)
		w := h.serve(r)
		input := []byte(method + target + headers + string(body))
		h.checkNoSecrets(t, w.Body.Bytes(), input, "", false)
		h.checkUnchanged(t, before, "an unsigned request was served")
		kit, routed := routeOf(r.URL.Path)
		if !routed {
			if w.Code != http.StatusNotFound {
				t.Fatalf("path %q is not ours, yet HTTP %d", r.URL.Path, w.Code)
			}
			return
		}
		key, limit := testBasicKey, int64(fuzzMaxBody)
		if kit {
			key, limit = testKitKey, fuzzMaxKitBody
		}
		rep := checkReply(t, w, key)
		want := koogallery.ResultAuthFailed
		if method != http.MethodPost || int64(len(body)) > limit {
			want = koogallery.ResultInvalidParam
		}
		if rep.code() != want {
			t.Fatalf("unsigned %s %q answered %s, want %s: %q", method, target, rep.code(), want, w.Body.Bytes())
		}
	})
}

// fuzzBasicFields are the fields a basic body may carry, in the order of FuzzSignedBasic's
// string arguments.
var fuzzBasicFields = []string{"activity", "instanceId", "orderId", "orderLineId", "businessId", "scene", "status", "expireTime", "productId", "testFlag"}

// basicBody builds the body of FuzzSignedBasic and the bytes to sign. mode 1 sends extra as the
// whole body; mode 0 a canonical JSON object of the non-empty fields (extra, when it is valid
// JSON, as productInfo); mode 2 the same object indented with its keys reversed, signed in its
// canonical form as KooGallery signs, so verification takes its canonical fallback.
func basicBody(mode uint8, fields []string, extra []byte) (body, signed []byte) {
	if mode%3 == 1 {
		return extra, extra
	}
	var b bytes.Buffer
	b.WriteString("{")
	first := true
	member := func(k string, v json.RawMessage) {
		if !first {
			b.WriteString(",\n  ")
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteString(": ")
		b.Write(v)
	}
	var members []func()
	for i, name := range fuzzBasicFields {
		if v := fields[i]; v != "" {
			vb, _ := json.Marshal(v)
			members = append(members, func() { member(name, vb) })
		}
	}
	switch {
	case len(extra) > 0 && json.Valid(extra):
		members = append(members, func() { member("productInfo", extra) })
	case fields[0] == koogallery.ActivityChangeInstanceCheck:
		pi, _ := json.Marshal(map[string]string{"productId": fields[8], "skuCode": fields[5], "productName": "fuzz"})
		members = append(members, func() { member("productInfo", pi) })
	}
	if mode%3 == 2 {
		for i := len(members) - 1; i >= 0; i-- {
			members[i]()
		}
	} else {
		for _, m := range members {
			m()
		}
	}
	b.WriteString("}")
	canon, err := koogallery.Canonical(b.Bytes())
	if err != nil {
		return b.Bytes(), b.Bytes()
	}
	if mode%3 == 2 {
		return b.Bytes(), canon
	}
	return canon, canon
}

// refusedEarly checks the calls answered before any activity runs: a timestamp outside the
// window (000001) and a body that does not parse (000002), neither changing anything. It reports
// whether the call was one of them.
func (h *fuzzHarness) refusedEarly(t *testing.T, before map[string]string, rep fuzzReply, skewMs int64, perr error) bool {
	t.Helper()
	switch {
	case !inWindow(skewMs):
		if rep.code() != koogallery.ResultAuthFailed {
			t.Fatalf("timestamp %d ms away answered %s", skewMs, rep.code())
		}
		h.checkUnchanged(t, before, "the call was refused")
		return true
	case perr != nil:
		if rep.code() != koogallery.ResultInvalidParam {
			t.Fatalf("body that does not parse (%v) answered %s (%s)", perr, rep.code(), rep.ResultMsg)
		}
		h.checkUnchanged(t, before, "the body does not parse")
		return true
	}
	return false
}

// inWindow reports whether a timestamp skewMs away from now passes the default ±60 s window.
func inWindow(skewMs int64) bool {
	return skewMs >= -koogallery.DefaultWindow.Milliseconds() && skewMs <= koogallery.DefaultWindow.Milliseconds()
}

// codesFor are the codes each activity may answer a verified call with in the fuzz world,
// which has no API failures (never 000001, and 000005 only for an order notification of an
// order Query Order does not know) and no reconciler (an order change stays in progress: 000004).
var codesFor = map[string][]string{
	koogallery.ActivityNewInstance:          {"000000", "000002", "000004", "000100"},
	koogallery.ActivityQueryInstance:        {"000000", "000002", "000003", "000004"},
	koogallery.ActivityRefreshInstance:      {"000000", "000002", "000003", "000004"},
	koogallery.ActivityUpdateInstanceStatus: {"000000", "000002", "000003"},
	koogallery.ActivityReleaseInstance:      {"000000", "000002"},
	koogallery.ActivityUpgradeInstance:      {"000000", "000002", "000003", "000004"},
	koogallery.ActivityChangeInstanceCheck:  {"000000", "000002", "000003", "000100"},
	koogallery.ActivityOrderNotify:          {"000000", "000002", "000005"},
}

// FuzzSignedBasic: basic calls signed with the right key, whose activity and fields are fuzzed,
// reach the parsing and the activities. The answer is a signed reply with a code the activity
// may give, 000002 exactly when the body does not parse, never 000001 inside the window, and
// debug calls and refused calls write nothing.
func FuzzSignedBasic(f *testing.F) {
	f.Add(uint8(0), koogallery.ActivityQueryInstance, fuzzReady, "", "", "", "", "", "", "", "", []byte(nil), int64(0))
	f.Add(uint8(0), koogallery.ActivityNewInstance, "", "CS9", "CS9-000001", "biz-9", "", "", "", "", "", []byte(nil), int64(0))
	f.Add(uint8(1), "", "", "", "", "", "", "", "", "", "", []byte(`{"activity":"releaseInstance","instanceId":"inst-ready"}`), int64(0))
	f.Fuzz(func(t *testing.T, mode uint8, activity, instanceID, orderID, orderLineID, businessID, scene, status, expireTime, productID, testFlag string, extra []byte, skewMs int64) {
		skewMs %= 3 * koogallery.DefaultWindow.Milliseconds()
		fields := []string{activity, instanceID, orderID, orderLineID, businessID, scene, status, expireTime, productID, testFlag}
		body, signed := basicBody(mode, fields, extra)
		ts := koogallery.Timestamp(testNow.Add(time.Duration(skewMs) * time.Millisecond))
		q := koogallery.BasicQuery(testBasicKey, signed, "fuzz-nonce", ts)
		r := httptest.NewRequest(http.MethodPost, DefaultPath+"?"+q.Encode(), bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json;charset=utf8")

		h := newFuzzHarness(t, Options{})
		before := h.snapshot(t)
		w := h.serve(r)
		rep := checkReply(t, w, testBasicKey)
		req, perr := koogallery.ParseBasicRequest(body)
		isQuery := perr == nil && req.ActivityName() == koogallery.ActivityQueryInstance
		h.checkNoSecrets(t, w.Body.Bytes(), body, q.Get(koogallery.ParamSignature), isQuery && rep.code() == koogallery.ResultSuccess)

		if h.refusedEarly(t, before, rep, skewMs, perr) {
			return
		}
		if !contains(codesFor[req.ActivityName()], rep.code()) {
			t.Fatalf("%s answered %s (%s)\nbody %q\nlog:\n%s", req.ActivityName(), rep.code(), rep.ResultMsg, body, h.log())
		}
		switch rep.code() {
		case koogallery.ResultInvalidParam, koogallery.ResultInstanceNotFound, koogallery.ResultNoResource:
			h.checkUnchanged(t, before, "the call was refused with "+rep.code())
		}
		if req.IsTest() {
			h.checkUnchanged(t, before, "a debug call was served")
		}
		checkActivityReply(t, req, rep)
	})
}

// checkActivityReply checks the per-activity fields: newInstance names its instance when it
// succeeds or accepts; a successful queryInstance answers only the IDs asked for.
func checkActivityReply(t *testing.T, req koogallery.BasicRequest, rep fuzzReply) {
	t.Helper()
	code := rep.code()
	switch req := req.(type) {
	case *koogallery.NewInstanceRequest:
		if (code == koogallery.ResultSuccess || code == koogallery.ResultProcessing) && (rep.InstanceID == nil || *rep.InstanceID == "") {
			t.Fatalf("newInstance answered %s without an instanceId", code)
		}
	case *koogallery.QueryInstanceRequest:
		if code != koogallery.ResultSuccess {
			return
		}
		ids, _ := req.InstanceIDs()
		if len(rep.Info) == 0 {
			t.Fatal("queryInstance answered 000000 without info")
		}
		for _, in := range rep.Info {
			if !contains(ids, in.InstanceID) {
				t.Fatalf("queryInstance answered instance %q, not asked for", in.InstanceID)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzSignedKit: kit syncs signed with the kit key, bodies fuzzed. The answer is signed with
// the kit key, 000002 exactly when the body does not parse, and debug and refused syncs write
// nothing.
func FuzzSignedKit(f *testing.F) {
	kitTS := koogallery.FormatKitTime(testNow)
	f.Add(uint8(0), []byte(`{"instanceId":"inst-ready","orderId":"CS1","tenantId":"T1","tenantCode":"acme","name":"Acme","domainName":"acme.example.com","flag":1,"testFlag":0,"timeStamp":"`+kitTS+`"}`), int64(0))
	if secret, err := koogallery.EncryptClientSecret(&fuzzRSA().PublicKey, "fuzz-client-secret"); err == nil {
		f.Add(uint8(1), []byte(`{"instanceId":"inst-ready","tenantId":"T1","appId":"A1","clientId":"C1","clientSecret":"`+secret+`","flag":1,"testFlag":0,"timeStamp":"`+kitTS+`"}`), int64(0))
		f.Add(uint8(1), []byte(`{"instanceId":"","tenantId":"T1","appId":"A1","clientId":"C1","clientSecret":"`+secret+`","flag":1,"testFlag":1,"timeStamp":"`+kitTS+`"}`), int64(0))
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, skewMs int64) {
		skewMs %= 3 * koogallery.DefaultWindow.Milliseconds()
		kinds := koogallery.KitKinds()
		k := kinds[int(kind)%len(kinds)]
		ts := koogallery.Timestamp(testNow.Add(time.Duration(skewMs) * time.Millisecond))
		r := httptest.NewRequest(http.MethodPost, k.Path(), bytes.NewReader(body))
		koogallery.SetKitHeaders(r.Header, testKitKey, body, "fuzz-nonce", ts)

		h := newFuzzHarness(t, Options{})
		before := h.snapshot(t)
		w := h.serve(r)
		rep := checkReply(t, w, testKitKey)
		h.checkNoSecrets(t, w.Body.Bytes(), body, r.Header.Get(koogallery.HeaderSign), false)
		if bytes.Contains(w.Body.Bytes(), []byte("fuzz-client-secret")) || strings.Contains(h.log(), "fuzz-client-secret") {
			t.Fatal("the decrypted client secret left the store")
		}
		req, perr := koogallery.ParseKitRequest(k, body)
		if h.refusedEarly(t, before, rep, skewMs, perr) {
			return
		}
		if !contains([]string{"000000", "000002", "000003"}, rep.code()) {
			t.Fatalf("%s answered %s (%s)\nbody %q\nlog:\n%s", k, rep.code(), rep.ResultMsg, body, h.log())
		}
		if rep.code() != koogallery.ResultSuccess {
			h.checkUnchanged(t, before, "the sync was refused with "+rep.code())
		}
		if req.IsTest() {
			h.checkUnchanged(t, before, "a debug sync was served")
		}
	})
}
