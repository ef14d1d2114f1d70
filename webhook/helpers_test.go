package webhook

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
)

var (
	testBasicKey = []byte("unit-basic-key")
	testKitKey   = []byte("unit-kit-key")
	testNow      = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
)

type staticKeys struct{ rsa *rsa.PrivateKey }

func (staticKeys) Basic() [][]byte              { return [][]byte{testBasicKey} }
func (staticKeys) Kit() [][]byte                { return [][]byte{testKitKey} }
func (k staticKeys) KitRSAKey() *rsa.PrivateKey { return k.rsa }

// recorded is every call recorded on inst, whether the reconciler (which the fake client does
// not run) has copied it into status.history yet or not.
func recorded(inst *saasv1alpha1.MarketplaceInstance) []saasv1alpha1.Operation {
	h, _ := saasv1alpha1.MergeCalls(inst.Status.History, saasv1alpha1.PendingCalls(inst))
	return h
}

// newFakeServer is a Server on an in-memory client with the webhook's indexes, for unit tests
// and the benchmark: no API server.
func newFakeServer(tb testing.TB, opts Options, objs ...client.Object) (*Server, client.Client) {
	tb.Helper()
	return newFakeServerWith(tb, opts, interceptor.Funcs{}, objs...)
}

func newFakeServerWith(tb testing.TB, opts Options, funcs interceptor.Funcs, objs ...client.Object) (*Server, client.Client) {
	tb.Helper()
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(objs...).WithInterceptorFuncs(funcs).
		WithStatusSubresource(&saasv1alpha1.MarketplaceInstance{}).
		WithIndex(&saasv1alpha1.MarketplaceInstance{}, InstanceIDIndex, indexInstanceID).
		WithIndex(&saasv1alpha1.MarketplaceInstance{}, OrderIDIndex, indexOrderIDs).
		WithIndex(&saasv1alpha1.MarketplaceInstance{}, UnresolvedIndex, indexUnresolved).
		Build()
	if opts.Clock == nil {
		opts.Clock = func() time.Time { return testNow }
	}
	s, err := newServer(c, c, staticKeys{}, nil, logr.Discard(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s, c
}

var nonceSeq atomic.Int64

func nonce() string {
	return "N" + strconv.FormatInt(nonceSeq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// signedBasic builds a basic request signed with key at ts.
func signedBasic(path string, key, body []byte, ts time.Time) *http.Request {
	q := koogallery.BasicQuery(key, body, nonce(), koogallery.Timestamp(ts))
	r := httptest.NewRequest(http.MethodPost, path+"?"+q.Encode(), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json;charset=utf8")
	return r
}

func signedKit(kind koogallery.KitKind, key, body []byte, ts time.Time) *http.Request {
	r := httptest.NewRequest(http.MethodPost, kind.Path(), bytes.NewReader(body))
	koogallery.SetKitHeaders(r.Header, key, body, nonce(), koogallery.Timestamp(ts))
	return r
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := koogallery.MarshalRequest(v.(koogallery.BasicRequest))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// do serves r and checks the reply's transport contract: 200, JSON, Body-Sign with key.
func do(tb testing.TB, s *Server, r *http.Request, key []byte) (koogallery.Reply, []byte) {
	tb.Helper()
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		tb.Fatalf("HTTP %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		tb.Fatalf("content type %q", ct)
	}
	body := w.Body.Bytes()
	if err := koogallery.VerifyBodySign([][]byte{key}, w.Header().Get(koogallery.HeaderBodySign), body); err != nil {
		tb.Fatalf("Body-Sign: %v", err)
	}
	var rep koogallery.Reply
	if err := json.Unmarshal(body, &rep); err != nil {
		tb.Fatalf("reply %s: %v", body, err)
	}
	return rep, body
}

// ownerRefs is the controller reference the reconciler puts on every child of inst.
func ownerRefs(inst *saasv1alpha1.MarketplaceInstance) []metav1.OwnerReference {
	return []metav1.OwnerReference{render.OwnerReference(inst)}
}

// tenantNamespaceOf is the tenant namespace of inst, as the reconciler creates it.
func tenantNamespaceOf(inst *saasv1alpha1.MarketplaceInstance) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: render.NamespaceName(inst.Name), OwnerReferences: ownerRefs(inst)}}
}

func readyInstance(name, id string) *saasv1alpha1.MarketplaceInstance {
	return &saasv1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: ""},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{
			InstanceID: id,
			Order:      saasv1alpha1.OrderReference{OrderID: "CS1", OrderLineID: "CS1-000001"},
			State:      saasv1alpha1.StateActive,
		},
		Status: saasv1alpha1.MarketplaceInstanceStatus{
			Namespace: "mpi-" + name,
			Conditions: []metav1.Condition{{Type: saasv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Available",
				LastTransitionTime: metav1.NewTime(testNow)}},
			AppInfo:              &saasv1alpha1.AppInfo{FrontEndURL: "https://" + name + ".apps.example.com/"},
			CredentialsSecretRef: &saasv1alpha1.SecretReference{Namespace: "mpi-" + name, Name: "marketplace-credentials"},
		},
	}
}
