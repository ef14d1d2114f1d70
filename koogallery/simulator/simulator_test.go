package simulator_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator/fakemerchant"
)

var (
	basicKey = []byte("basic-test-key")
	kitKey   = []byte("kit-test-key")
	fixedNow = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
)

func clock() time.Time { return fixedNow }

func fast(url string) simulator.Config {
	return simulator.Config{
		ProductionURL: url, BasicKey: basicKey, KitKey: kitKey, Clock: clock,
		RetrySchedule: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond},
		PollInterval:  time.Millisecond, PollTimeout: 5 * time.Second,
	}
}

func newPair(t *testing.T, readyAfter int) (*simulator.Simulator, *fakemerchant.Server) {
	t.Helper()
	m := fakemerchant.New(fakemerchant.Config{BasicKey: basicKey, KitKey: kitKey, Clock: clock, ReadyAfterPolls: readyAfter})
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	sim, err := simulator.New(fast(srv.URL + "/saasproduce"))
	if err != nil {
		t.Fatal(err)
	}
	return sim, m
}

func TestLifecycle(t *testing.T) {
	sim, m := newPair(t, 2)
	steps, err := sim.Lifecycle(context.Background(), simulator.LifecycleOptions{Test: true})
	if err != nil {
		t.Fatalf("lifecycle: %v", err)
	}
	want := []string{"create", "poll", "renew", "freeze", "unfreeze", "upgrade", "release"}
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d", len(steps), len(want))
	}
	for i, st := range steps {
		if st.Name != want[i] {
			t.Errorf("step %d is %s, want %s", i, st.Name, want[i])
		}
	}
	if steps[0].ResultCode != koogallery.ResultProcessing || steps[1].Attempts != 3 {
		t.Errorf("create %s with %d polls, want 000004 and 3 polls", steps[0].ResultCode, steps[1].Attempts)
	}
	id := strings.TrimPrefix(steps[0].Detail, "instanceId ")
	in, ok := m.Instance(id)
	if !ok || !in.Released || in.OrderID != simulator.MockMonthChange || in.ExpireTime.IsZero() {
		t.Errorf("merchant state %+v", in)
	}
	var buf bytes.Buffer
	if err := simulator.WriteTable(&buf, steps); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "STEP") || strings.Count(buf.String(), "\n") != 8 {
		t.Errorf("table:\n%s", buf.String())
	}
}

func TestRetryScheduleAndExchanges(t *testing.T) {
	sim, m := newPair(t, 0)
	m.FailNext(koogallery.ActivityNewInstance, 2, koogallery.ResultInternalError)
	res, err := sim.NewInstance(context.Background(), koogallery.NewInstanceRequest{OrderID: "O1", OrderLineID: "O1-1", BusinessID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.CreateAttempts != 3 || res.CreateCode != koogallery.ResultSuccess || res.Polls != 1 || res.Info.AppInfo == nil {
		t.Fatalf("result %+v", res)
	}
	ex := sim.Exchanges()
	wantCodes := []string{"000005", "000005", "000000", "000000"}
	if len(ex) != len(wantCodes) {
		t.Fatalf("exchanges %+v", ex)
	}
	for i, e := range ex {
		if e.ResultCode != wantCodes[i] || e.HTTPStatus != 200 {
			t.Errorf("exchange %d: %+v", i, e)
		}
	}
	if ex[2].Attempt != 3 || ex[3].Activity != koogallery.ActivityQueryInstance {
		t.Errorf("attempts %+v", ex)
	}
	// Past the schedule the call fails with the last answer.
	m.FailNext(koogallery.ActivityReleaseInstance, 5, koogallery.ResultInternalError)
	_, err = sim.ReleaseInstance(context.Background(), koogallery.ReleaseInstanceRequest{InstanceID: res.InstanceID})
	var ce *simulator.CallError
	if !errors.As(err, &ce) || ce.Attempts != 4 || ce.ResultCode != koogallery.ResultInternalError {
		t.Fatalf("release: %v", err)
	}
}

func TestDocumentedSchedule(t *testing.T) {
	if s := simulator.DefaultRetrySchedule(koogallery.ActivityNewInstance); len(s) != 3 || s[0] != time.Hour {
		t.Errorf("create: %v", s)
	}
	if s := simulator.DefaultRetrySchedule(koogallery.ActivityReleaseInstance); len(s) != 1 {
		t.Errorf("release: %v", s)
	}
	if s := simulator.DefaultRetrySchedule(koogallery.ActivityQueryInstance); s != nil {
		t.Errorf("query: %v", s)
	}
}

// TestReplyChecks: a reply KooGallery's checker would refuse counts as a failed attempt.
func TestReplyChecks(t *testing.T) {
	good := []byte(`{"resultCode":"000000","resultMsg":"success"}`)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		reason  string
	}{
		{"no Body-Sign", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(good)
		}, "no Body-Sign"},
		{"Body-Sign with another key", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Body-Sign", koogallery.BodySign([]byte("other"), good))
			_, _ = w.Write(good)
		}, "does not match"},
		{"lower-case header value format", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Body-Sign", "signature=abc")
			_, _ = w.Write(good)
		}, "Body-Sign"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(good)
		}, "content type"},
		{"HTTP 500", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
		}, "status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			sim, _ := simulator.New(fast(srv.URL))
			_, err := sim.UpdateInstanceStatus(context.Background(), koogallery.UpdateInstanceStatusRequest{InstanceID: "i", Status: koogallery.StatusFreeze})
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("got %v, want %q", err, tt.reason)
			}
			if n := len(sim.Exchanges()); n != 4 {
				t.Fatalf("%d attempts, want 4 (one per compressed schedule entry plus the first)", n)
			}
		})
	}
}

func TestPollTimeout(t *testing.T) {
	sim, _ := newPair(t, 1_000_000)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := sim.NewInstance(ctx, koogallery.NewInstanceRequest{OrderID: "O", OrderLineID: "O-1", BusinessID: "b"})
	if err == nil || !strings.Contains(err.Error(), "polling") {
		t.Fatalf("got %v", err)
	}
}

func TestSendKit(t *testing.T) {
	sim, _ := newPair(t, 0)
	req := &koogallery.TenantSyncRequest{KitCommon: koogallery.NewKitCommon("i", true, koogallery.FormatKitTime(fixedNow)),
		TenantID: "t", TenantCode: "c", Name: "Acme", DomainName: "acme.example.com", Flag: koogallery.NewInt(koogallery.FlagAdd)}
	resp, err := sim.SendKit(context.Background(), req)
	if err != nil || resp.Reply.ResultCode != koogallery.ResultSuccess {
		t.Fatalf("kit: %+v %v", resp, err)
	}
	bad := *req
	bad.Flag = koogallery.NewInt(9)
	if _, err := sim.SendKit(context.Background(), &bad); err == nil {
		t.Fatal("invalid kit body accepted by the merchant")
	}
}

func TestQueryBatch(t *testing.T) {
	sim, _ := newPair(t, 0)
	a, _ := sim.NewInstance(context.Background(), koogallery.NewInstanceRequest{OrderID: "A", OrderLineID: "A-1", BusinessID: "ba"})
	b, _ := sim.NewInstance(context.Background(), koogallery.NewInstanceRequest{OrderID: "B", OrderLineID: "B-1", BusinessID: "bb"})
	reply, err := sim.QueryInstance(context.Background(), "", a.InstanceID, b.InstanceID, "missing")
	if err != nil || len(reply.Info) != 2 {
		t.Fatalf("batch: %+v %v", reply, err)
	}
	again, _ := sim.NewInstance(context.Background(), koogallery.NewInstanceRequest{OrderID: "A", OrderLineID: "A-1", BusinessID: "other"})
	if again.InstanceID != a.InstanceID {
		t.Fatalf("create is not idempotent: %s vs %s", again.InstanceID, a.InstanceID)
	}
}

func TestLoad(t *testing.T) {
	sim, _ := newPair(t, 0)
	res, err := sim.Load(context.Background(), simulator.LoadConfig{Count: 40, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 40 || res.Succeeded != 40 || res.Codes[koogallery.ResultSuccess] != 40 || res.P50 <= 0 || res.Max < res.P99 {
		t.Fatalf("load %+v", res)
	}
	if len(sim.Exchanges()) != 0 {
		t.Fatal("load must not fill the exchange log")
	}
	res, err = sim.Load(context.Background(), simulator.LoadConfig{Duration: 30 * time.Millisecond, Rate: 200, Activity: koogallery.ActivityQueryInstance, InstanceID: "nope"})
	if err != nil || res.Sent == 0 || res.Sent > 10 || res.Codes[koogallery.ResultInstanceNotFound] != res.Sent {
		t.Fatalf("rate-limited load %+v %v", res, err)
	}
}

// A load run keeps a connection per worker: with net/http's two idle connections per host, about
// a third of the calls of eight workers open a new one, and the run would measure that.
func TestLoadReusesConnections(t *testing.T) {
	m := fakemerchant.New(fakemerchant.Config{BasicKey: basicKey, KitKey: kitKey, Clock: clock})
	srv := httptest.NewUnstartedServer(m)
	var opened atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	sim, err := simulator.New(fast(srv.URL + "/saasproduce"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := sim.Load(context.Background(), simulator.LoadConfig{Count: 400, Concurrency: 8, Activity: koogallery.ActivityQueryInstance, InstanceID: "nope"})
	if err != nil || res.Sent != 400 {
		t.Fatalf("load %+v %v", res, err)
	}
	// The transport may dial for a call while another call's connection is on its way back to
	// the pool, so a few more than the workers can open; without kept connections it is over 100.
	if n := opened.Load(); n > 16 {
		t.Fatalf("400 calls of 8 workers opened %d connections, want at most 16", n)
	}
	if res.Mean <= 0 || res.Mean > res.Max {
		t.Fatalf("mean %s outside (0, max %s]", res.Mean, res.Max)
	}
}

func TestLoadActivities(t *testing.T) {
	sim, m := newPair(t, 0)
	res, err := sim.Load(context.Background(), simulator.LoadConfig{Count: 3, Concurrency: 1, OrderPrefix: "PFX"})
	if err != nil || res.Succeeded != 3 {
		t.Fatalf("newInstance load %+v %v", res, err)
	}
	var ids []string
	for i := range 2 {
		created, err := sim.NewInstance(context.Background(), koogallery.NewInstanceRequest{
			OrderID: simulator.LoadOrderID("PFX", i), OrderLineID: simulator.MockLineID(simulator.LoadOrderID("PFX", i)), BusinessID: "again"})
		if err != nil {
			t.Fatal(err)
		}
		if created.InstanceID == "again" {
			t.Fatalf("the load did not order %s", simulator.LoadOrderID("PFX", i))
		}
		ids = append(ids, created.InstanceID)
	}
	// Four calls over two instances: both frozen, then both unfrozen.
	res, err = sim.Load(context.Background(), simulator.LoadConfig{Count: 4, Concurrency: 1,
		Activity: koogallery.ActivityUpdateInstanceStatus, InstanceID: strings.Join(ids, ",")})
	if err != nil || res.Succeeded != 4 {
		t.Fatalf("updateInstanceStatus load %+v %v", res, err)
	}
	for _, id := range ids {
		if in, _ := m.Instance(id); in.Frozen {
			t.Errorf("%s is frozen after freeze then unfreeze", id)
		}
	}
	res, err = sim.Load(context.Background(), simulator.LoadConfig{Count: 2, Activity: koogallery.ActivityQueryInstance, InstanceID: strings.Join(ids, ",")})
	if err != nil || res.Codes[koogallery.ResultSuccess] != 2 || res.P95 < res.P50 {
		t.Fatalf("queryInstance load of two IDs %+v %v", res, err)
	}
}

func TestLoadBounds(t *testing.T) {
	remote, _ := simulator.New(simulator.Config{ProductionURL: "https://merchant.example.com/saasproduce", BasicKey: basicKey})
	bad := []simulator.LoadConfig{
		{},
		{Count: simulator.MaxLoadCount + 1},
		{Duration: 2 * time.Hour},
		{Count: 1, Concurrency: 1000},
		{Count: 1, Rate: -1},
		{Count: 1, Activity: koogallery.ActivityReleaseInstance},
		{Count: 1, Activity: koogallery.ActivityQueryInstance},
		{Count: 1, Activity: koogallery.ActivityUpdateInstanceStatus},
	}
	local, _ := simulator.New(simulator.Config{ProductionURL: "http://127.0.0.1:1/", BasicKey: basicKey})
	for _, cfg := range bad {
		if _, err := local.Load(context.Background(), cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
	if _, err := remote.Load(context.Background(), simulator.LoadConfig{Count: 1}); err == nil {
		t.Error("load against a remote host without AllowRemote")
	}
	for host, want := range map[string]bool{"localhost:80": true, "127.0.0.1": true, "[::1]:8080": true, "10.0.0.1": false, "example.com": false} {
		if simulator.IsLoopback(host) != want {
			t.Errorf("IsLoopback(%s)", host)
		}
	}
}
