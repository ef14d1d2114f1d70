package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// The webhook's own cost per call: verify, parse, look up in the (in-memory) cache, answer with
// a signed reply. No API server is involved; requests are signed before the timer starts, as
// KooGallery signs them, not us.
func benchCalls(b *testing.B, s *Server, key, body []byte, want string) {
	b.Helper()
	queries := make([]url.Values, b.N)
	for i := range queries {
		queries[i] = koogallery.BasicQuery(key, body, nonce(), koogallery.Timestamp(testNow))
	}
	h := s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodPost, DefaultPath+"?"+queries[i].Encode(), bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if i == 0 && !bytes.Contains(w.Body.Bytes(), []byte(`"resultCode":"`+want+`"`)) {
			b.Fatalf("reply %s", w.Body.Bytes())
		}
	}
}

func benchServer(b *testing.B) *Server {
	inst := readyInstance("cs1-000001", "inst-1")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "mpi-cs1-000001", Name: "marketplace-credentials", OwnerReferences: ownerRefs(inst)},
		Data: map[string][]byte{"userName": []byte("admin"), "password": []byte("s3cret-Pass")}}
	s, _ := newFakeServer(b, Options{}, inst, secret)
	return s
}

func BenchmarkQueryInstanceReady(b *testing.B) {
	s := benchServer(b)
	body, _ := koogallery.MarshalRequest(&koogallery.QueryInstanceRequest{InstanceID: "inst-1"})
	benchCalls(b, s, testBasicKey, body, koogallery.ResultSuccess)
}

// A duplicate create: the API server answers AlreadyExists (modelled without cost: the fake
// client's own create path would dominate the figure), the instance is read from the cache.
func BenchmarkNewInstanceExisting(b *testing.B) {
	inst := readyInstance("cs1-000001", "inst-1")
	s, _ := newFakeServerWith(b, Options{}, interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			return apierrors.NewAlreadyExists(schema.GroupResource{Group: "saas.marketplace.dev", Resource: "marketplaceinstances"}, obj.GetName())
		},
	}, inst)
	body, _ := koogallery.MarshalRequest(&koogallery.NewInstanceRequest{OrderID: "CS1", OrderLineID: "CS1-000001", BusinessID: "retry-1"})
	benchCalls(b, s, testBasicKey, body, koogallery.ResultSuccess)
}

func BenchmarkRejectedWrongKey(b *testing.B) {
	s := benchServer(b)
	body, _ := koogallery.MarshalRequest(&koogallery.QueryInstanceRequest{InstanceID: "inst-1"})
	benchCalls(b, s, []byte("wrong-key"), body, koogallery.ResultAuthFailed)
}
