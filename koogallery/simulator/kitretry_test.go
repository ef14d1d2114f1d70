package simulator_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator/fakemerchant"
)

// flakyKit answers the first failures kit calls with failure (a 000005 reply, signed), then
// lets the fake merchant answer; it records the x-nonce of every call.
type flakyKit struct {
	next     http.Handler
	mu       sync.Mutex
	failures int
	nonces   []string
}

func (f *flakyKit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.nonces = append(f.nonces, r.Header.Get(koogallery.HeaderNonce))
	fail := len(f.nonces) <= f.failures
	f.mu.Unlock()
	if fail {
		_ = koogallery.WriteReply(w, kitKey, koogallery.Reply{ResultCode: koogallery.ResultInternalError, ResultMsg: "busy"})
		return
	}
	f.next.ServeHTTP(w, r)
}

func newFlakyKit(t *testing.T, failures int, retry []time.Duration) (*simulator.Simulator, *flakyKit) {
	t.Helper()
	f := &flakyKit{failures: failures, next: fakemerchant.New(fakemerchant.Config{BasicKey: basicKey, KitKey: kitKey, Clock: clock})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := fast(srv.URL + "/saasproduce")
	cfg.RetrySchedule = retry
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, f
}

func tenantSync() *koogallery.TenantSyncRequest {
	return &koogallery.TenantSyncRequest{KitCommon: koogallery.NewKitCommon("i", false, koogallery.FormatKitTime(fixedNow)),
		TenantID: "t", TenantCode: "c", Name: "Acme", Flag: koogallery.NewInt(koogallery.FlagAdd)}
}

// §1.10: a failed kit call is called again, five calls in all, each signed anew; then KooGallery
// stops.
func TestKitSyncRetriedUpToFiveCalls(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		retry    []time.Duration
		calls    int
		ok       bool
	}{
		{"succeeds on the fifth call", 4, []time.Duration{time.Millisecond}, 5, true},
		{"stops after five calls", 9, []time.Duration{time.Millisecond}, 5, false},
		{"a longer compressed schedule is cut to five calls", 9, []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond}, 5, false},
		{"told never to retry", 9, []time.Duration{}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, f := newFlakyKit(t, tc.failures, tc.retry)
			resp, err := sim.SendKit(context.Background(), tenantSync())
			var ce *simulator.CallError
			switch {
			case tc.ok && (err != nil || resp.Attempts != tc.calls):
				t.Fatalf("got %+v, %v; want success on call %d", resp, err, tc.calls)
			case !tc.ok && (!errors.As(err, &ce) || ce.Attempts != tc.calls || ce.ResultCode != koogallery.ResultInternalError):
				t.Fatalf("got %+v, %v; want a failure after %d calls", resp, err, tc.calls)
			}
			seen := map[string]bool{}
			for _, n := range f.nonces {
				seen[n] = true
			}
			if len(f.nonces) != tc.calls || len(seen) != tc.calls {
				t.Errorf("%d calls with %d distinct nonces, want %d of each", len(f.nonces), len(seen), tc.calls)
			}
			if ex := sim.Exchanges(); len(ex) != tc.calls || ex[len(ex)-1].Attempt != tc.calls {
				t.Errorf("exchanges %+v", ex)
			}
		})
	}
}

func TestDocumentedKitSchedule(t *testing.T) {
	for _, k := range koogallery.KitKinds() {
		s := simulator.DefaultRetrySchedule(string(k))
		if len(s) != simulator.KitCalls-1 || s[0] != simulator.DefaultKitRetryInterval {
			t.Errorf("%s: %v", k, s)
		}
	}
}
