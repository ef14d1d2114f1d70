package metricsauth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// serviceAccountToken returns a token the API server issues for a new service account, and its
// user name. The name is new on every run: the API server's authoriser may still allow the user
// of a previous run (go test -count) for a moment after its grant is removed.
func serviceAccountToken(t *testing.T, name string) (string, string) {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Namespace: "default"}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), sa) })
	tr := &authenticationv1.TokenRequest{}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token, "system:serviceaccount:default:" + sa.Name
}

func allow(t *testing.T, name, user string, urls ...string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: urls, Verbs: []string{"get"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
}

func serve(h http.Handler, path, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The endpoint answers only callers the API server authenticates and RBAC allows the path,
// through the filter as the manager builds it.
func TestFilterAuthenticatesAndAuthorises(t *testing.T) {
	g := NewWithT(t)
	httpClient, err := rest.HTTPClientFor(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	filter, err := Filter(env.Config, httpClient)
	g.Expect(err).NotTo(HaveOccurred())
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 4})
	h, err := filter(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	g.Expect(err).NotTo(HaveOccurred())

	token, user := serviceAccountToken(t, "scraper")
	for name, tc := range map[string]struct {
		authorization string
		code          int
	}{
		"no token":        {"", http.StatusUnauthorized},
		"another scheme":  {"Basic " + token, http.StatusUnauthorized},
		"unknown token":   {"Bearer not-a-token", http.StatusUnauthorized},
		"valid, no grant": {"Bearer " + token, http.StatusForbidden},
	} {
		rec := serve(h, "/metrics", tc.authorization)
		g.Expect(rec.Code).To(Equal(tc.code), name)
		g.Expect(rec.Body.String()).NotTo(ContainSubstring(token), name)
	}
	g.Expect(serve(h, "/metrics", "Bearer "+token).Body.String()).To(ContainSubstring(user))

	allow(t, "metrics-reader", user, "/metrics")
	g.Eventually(func() int { return serve(h, "/metrics", "Bearer "+token).Code }).Should(Equal(http.StatusOK))
	g.Expect(serve(h, "/metrics", "bearer "+token).Body.String()).To(Equal("metrics"))
	g.Expect(serve(h, "/debug/pprof/", "Bearer "+token).Code).To(Equal(http.StatusForbidden), "the grant is for /metrics only")
	g.Expect(logs.String()).To(ContainSubstring(user))
	g.Expect(logs.String()).NotTo(ContainSubstring(token))
}

// An allowed caller is let in again without reviews until allowTTL has passed; a refused one is
// asked about again at once, so a grant takes effect at the next scrape.
func TestGuardRemembersOnlyWhatItAllowed(t *testing.T) {
	g := NewWithT(t)
	token, user := serviceAccountToken(t, "remembered")
	now := time.Now()
	counting := &countingClient{Client: env.Client}
	gd := &guard{reviews: counting, allowed: map[[sha256.Size]byte]time.Time{}, now: func() time.Time { return now }}
	h := gd.handler(funcr.New(func(string, string) {}, funcr.Options{}), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	g.Expect(serve(h, "/metrics", "Bearer "+token).Code).To(Equal(http.StatusForbidden))
	allow(t, "remembered", user, "/metrics")
	g.Eventually(func() int { return serve(h, "/metrics", "Bearer "+token).Code }).Should(Equal(http.StatusOK))

	before := counting.creates
	g.Expect(serve(h, "/metrics", "Bearer "+token).Code).To(Equal(http.StatusOK))
	g.Expect(counting.creates).To(Equal(before), "an allowed caller is remembered")

	g.Expect(env.Client.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "remembered"}})).To(Succeed())
	now = now.Add(allowTTL)
	g.Eventually(func() int { return serve(h, "/metrics", "Bearer "+token).Code }).Should(Equal(http.StatusForbidden))
	g.Expect(counting.creates).To(BeNumerically(">", before))
}

// countingClient counts the reviews created.
type countingClient struct {
	client.Client
	creates int
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.creates++
	return c.Client.Create(ctx, obj, opts...)
}
