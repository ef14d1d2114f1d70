//go:build chaos

package chaos

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/marketplace-operator/marketplace-operator/internal/rig"
)

// balancer stands in for the Service in front of the replicas: it spreads calls round-robin
// over the replicas in rotation, as kube-proxy spreads them over ready endpoints, and counts the
// calls each replica answered in each phase of a test. A replica taken out of rotation gets no
// new calls; calls in flight to a killed one fail (502), as they would through a Service.
type balancer struct {
	srv *httptest.Server

	mu       sync.Mutex
	backends []*backend
	next     int
	phase    string
}

type backend struct {
	name     string
	proxy    *httputil.ReverseProxy
	in       bool
	answered map[string]int // by phase: calls answered with HTTP 200
}

func newBalancer(t *testing.T, names []string, ops []*rig.Operator) *balancer {
	t.Helper()
	b := &balancer{}
	for i, op := range ops {
		u, err := url.Parse(op.MarketplaceURL)
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(u)
		// A call cut off by a kill is expected here; the caller sees its 502.
		proxy.ErrorLog = log.New(io.Discard, "", 0)
		b.backends = append(b.backends, &backend{name: names[i], proxy: proxy, in: true, answered: map[string]int{}})
	}
	b.srv = httptest.NewServer(b)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *balancer) URL() string { return b.srv.URL }

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	be, phase := b.pick()
	if be == nil {
		http.Error(w, "no replica in rotation", http.StatusServiceUnavailable)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	be.proxy.ServeHTTP(rec, r)
	if rec.status == http.StatusOK {
		b.mu.Lock()
		be.answered[phase]++
		b.mu.Unlock()
	}
}

func (b *balancer) pick() (*backend, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.backends {
		be := b.backends[b.next%len(b.backends)]
		b.next++
		if be.in {
			return be, b.phase
		}
	}
	return nil, b.phase
}

// rotate puts a replica in or out of rotation, as its readiness does for a Service.
func (b *balancer) rotate(name string, in bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, be := range b.backends {
		if be.name == name {
			be.in = in
		}
	}
}

// setPhase labels the calls that follow.
func (b *balancer) setPhase(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.phase = p
}

// answered is how many calls the replica answered in a phase.
func (b *balancer) answered(name, phase string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, be := range b.backends {
		if be.name == name {
			return be.answered[phase]
		}
	}
	return 0
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
