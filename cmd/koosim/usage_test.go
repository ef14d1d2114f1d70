package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// syncBuffer is a bytes.Buffer the serving goroutine and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs "koosim serve" until the test ends and returns its base URL.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	var out syncBuffer
	a := newApp(strings.NewReader(""), &out, &out, func(string) string { return "" })
	a.onListen = func(s string) { addr <- s }
	done := make(chan int, 1)
	go func() {
		done <- a.run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--ak", "ak", "--sk", "sk"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exit %d: %s", code, out.String())
		}
	})
	select {
	case base := <-addr:
		return "http://" + base
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, out.String())
	}
	return ""
}

func TestPayPerUseLifecycleAndUsageCommands(t *testing.T) {
	base := startServe(t, "--usage-key", "usage-key")
	srv, m := merchant(t)
	dc := simulator.DebugClient{BaseURL: base}

	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runCLI(t, nil, "", "lifecycle", "--url", srv.URL, "--key", vecKey, "--order-id", simulator.MockOnDemand,
			"--openapi-url", base, "--await-usage", "2", "--poll-interval", "1ms", "--poll-timeout", "30s")
		done <- result{code, out, errOut}
	}()

	// Play the merchant's metering: once the lifecycle registered the instance, push two periods.
	var id string
	deadline := time.Now().Add(30 * time.Second)
	for id == "" {
		rep, err := dc.Usage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Instances) > 0 {
			id = rep.Instances[0].InstanceID
			break
		}
		select {
		case r := <-done:
			t.Fatalf("lifecycle ended before registering: exit %d\n%s\n%s", r.code, r.out, r.errs)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the lifecycle never registered its instance")
		}
	}
	c, err := openapi.NewClient(openapi.Config{Endpoint: base, AK: "ak", SK: "sk", UsageKey: []byte("usage-key")})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Truncate(time.Second)
	var recs []openapi.UsageRecord
	for _, e := range []time.Time{end.Add(-time.Minute), end} {
		recs = append(recs, openapi.UsageRecord{InstanceID: id, RecordTime: end, BeginTime: e.Add(-time.Minute), EndTime: e, UsageValue: 1.25, MeteringSN: openapi.MeteringSN(id, e)})
	}
	if err := c.PushUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}

	r := <-done
	if r.code != 0 {
		t.Fatalf("lifecycle: exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n")[1:] {
		names = append(names, strings.Fields(l)[0])
	}
	if got := strings.Join(names, ","); got != "create,poll,register,freeze,unfreeze,usage,release" || !strings.Contains(r.out, "2 records, total 2.5000") {
		t.Errorf("steps %s\n%s", got, r.out)
	}
	if in, _ := m.Instance(id); !in.Released || !in.ExpireTime.IsZero() {
		t.Errorf("merchant state %+v", in)
	}

	code, out, errOut := runCLI(t, nil, "", "usage", "--openapi-url", base, "--instance-id", id)
	if code != 0 || !strings.Contains(out, recs[0].MeteringSN) || !strings.Contains(out, recs[1].MeteringSN) ||
		!strings.Contains(out, "known true, 2 records, total 2.5000, duplicates 0, conflicts 0, overlaps 0") {
		t.Errorf("usage --instance-id: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, map[string]string{"KOOSIM_OPENAPI_URL": base}, "", "usage")
	if code != 0 || !strings.Contains(out, id+"  true") || !strings.Contains(out, "pushes 1, records 2") {
		t.Errorf("usage: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, nil, "", "usage", "--openapi-url", base, "--json")
	var rep simulator.UsageReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Stats.Records != 2 || rep.Instances[0].Total != 2.5 {
		t.Errorf("usage --json: exit %d\n%s", code, out)
	}
}

func TestUsageCommandErrors(t *testing.T) {
	for _, args := range [][]string{
		{"usage"},
		{"lifecycle", "--url", "http://127.0.0.1:1", "--key", "k", "--await-usage", "1"},
		{"lifecycle", "--url", "http://127.0.0.1:1", "--key", "k", "--openapi-url", "http://127.0.0.1:1", "--await-usage", "-1"},
	} {
		if code, _, _ := runCLI(t, nil, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := runCLI(t, nil, "", "usage", "--openapi-url", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "reading usage") {
		t.Errorf("an unreachable simulator: exit %d %s", code, errOut)
	}
}
