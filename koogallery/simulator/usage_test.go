package simulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

var usageKey = []byte("usage-test-key")

const (
	known   = "inst-known"
	started = "20260301T060000Z" // when known was registered: fixedNow - 2h
)

func usageServer(t *testing.T, opts ...simulator.ServerOption) (*simulator.OpenAPIServer, string) {
	t.Helper()
	srv := simulator.NewOpenAPIServer("AK", "SK", append([]simulator.ServerOption{simulator.WithClock(clock), simulator.WithUsageKey(usageKey)}, opts...)...)
	srv.RegisterInstance(known, fixedNow.Add(-2*time.Hour))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

type pushOpts struct {
	ts, nonce, sig string
	key            []byte
}

// push sends body as a usage push signed like openapi.Client does, with overrides from o.
func push(t *testing.T, url, body string, o pushOpts) (int, string, string) {
	t.Helper()
	if o.ts == "" {
		o.ts = strconv.FormatInt(fixedNow.UnixMilli(), 10)
	}
	if o.nonce == "" {
		o.nonce = simulator.RandomNonce()
	}
	if o.key == nil {
		o.key = usageKey
	}
	if o.sig == "" {
		o.sig = openapi.UsageSign(o.key, o.ts, o.nonce, []byte(body))
	}
	req, err := http.NewRequest(http.MethodPost, url+openapi.UsagePushPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{openapi.HeaderUsageTS: o.ts, openapi.HeaderUsageNonce: o.nonce, openapi.HeaderUsageSignature: o.sig} {
		if v != "-" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb struct {
		Code string `json:"error_code"`
		Msg  string `json:"error_msg"`
	}
	if err := json.Unmarshal(raw, &eb); err != nil {
		t.Fatalf("answer %q is not the error_code/error_msg shape: %v", raw, err)
	}
	return resp.StatusCode, eb.Code, eb.Msg
}

// rec is one record as JSON with the given fields replacing a valid hour of known's usage.
func rec(over map[string]any) string {
	f := map[string]any{
		"instance_id": known, "record_time": "20260301T075900Z", "begin_time": "20260301T070000Z",
		"end_time": "20260301T075900Z", "usage_value": "1.5", "metering_sn": "sn-1",
	}
	for k, v := range over {
		if v == nil {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	b, _ := json.Marshal(f)
	return string(b)
}

func body(records ...string) string {
	return `{"usage_records":[` + strings.Join(records, ",") + `]}`
}

func TestUsagePushRefusals(t *testing.T) {
	many := make([]string, openapi.MaxUsageRecords+1)
	for i := range many {
		many[i] = rec(map[string]any{"metering_sn": fmt.Sprint(i)})
	}
	stale := strconv.FormatInt(fixedNow.Add(-61*time.Second).UnixMilli(), 10)
	early := strconv.FormatInt(fixedNow.Add(61*time.Second).UnixMilli(), 10)
	cases := []struct {
		name   string
		body   string
		o      pushOpts
		status int
		code   string
	}{
		{"no signature header", body(rec(nil)), pushOpts{sig: "-"}, 400, openapi.CodeInvalidParameter},
		{"no nonce header", body(rec(nil)), pushOpts{nonce: "-"}, 400, openapi.CodeInvalidParameter},
		{"nonce too long", body(rec(nil)), pushOpts{nonce: strings.Repeat("n", 65)}, 500, openapi.CodeInputFailure},
		{"ts in seconds", body(rec(nil)), pushOpts{ts: strconv.FormatInt(fixedNow.Unix(), 10)}, 401, openapi.CodeIllegalToken},
		{"stale ts", body(rec(nil)), pushOpts{ts: stale}, 401, openapi.CodeIllegalToken},
		{"future ts", body(rec(nil)), pushOpts{ts: early}, 401, openapi.CodeIllegalToken},
		{"ts not a number", body(rec(nil)), pushOpts{ts: "now"}, 500, openapi.CodeInputFailure},
		{"wrong key", body(rec(nil)), pushOpts{key: []byte("other")}, 400, openapi.CodeInvalidBodySign},
		{"not JSON", `usage`, pushOpts{}, 400, openapi.CodeInvalidParameter},
		{"extra top-level field", `{"usage_records":[` + rec(nil) + `],"x":1}`, pushOpts{}, 400, openapi.CodeInvalidParameter},
		{"no usage_records", `{}`, pushOpts{}, 400, openapi.CodeInvalidParameter},
		{"empty usage_records", body(), pushOpts{}, 500, openapi.CodeInputFailure},
		{"1001 records", body(many...), pushOpts{}, 500, openapi.CodeTooManyRecords},
		{"old version's product_id", body(rec(map[string]any{"product_id": "p"})), pushOpts{}, 400, openapi.CodeInvalidParameter},
		{"no instance_id", body(rec(map[string]any{"instance_id": nil})), pushOpts{}, 400, openapi.CodeInvalidParameter},
		{"no usage_value", body(rec(map[string]any{"usage_value": nil})), pushOpts{}, 400, openapi.CodeInvalidParameter},
		{"instance_id a number", body(rec(map[string]any{"instance_id": 7})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"instance_id too long", body(rec(map[string]any{"instance_id": strings.Repeat("i", 65)})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"metering_sn too long", body(rec(map[string]any{"metering_sn": strings.Repeat("s", 65)})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"RFC 3339 time", body(rec(map[string]any{"begin_time": "2026-03-01T07:00:00Z"})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"time without Z", body(rec(map[string]any{"end_time": "20260301T075900"})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"5 decimals", body(rec(map[string]any{"usage_value": "1.00001"})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"zero", body(rec(map[string]any{"usage_value": "0.0000"})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"negative", body(rec(map[string]any{"usage_value": "-1"})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"exponent", body(rec(map[string]any{"usage_value": "1e3"})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"9 integer digits", body(rec(map[string]any{"usage_value": "123456789"})), pushOpts{}, 500, openapi.CodeInputFailure},
		{"end before begin", body(rec(map[string]any{"end_time": "20260301T065900Z"})), pushOpts{}, 500, openapi.CodeInvalidUsageEntity},
		{"end in the future", body(rec(map[string]any{"end_time": "20260301T090000Z"})), pushOpts{}, 500, openapi.CodeInvalidUsageEntity},
		{"unknown instance", body(rec(nil), rec(map[string]any{"instance_id": "never-created", "metering_sn": "sn-2"})), pushOpts{}, 500, openapi.CodeInstanceNotFound},
		{"begin before the instance", body(rec(map[string]any{"begin_time": "20260301T055959Z"})), pushOpts{}, 500, openapi.CodeBeginTimeLimit},
	}
	srv, url := usageServer(t)
	refused := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg := push(t, url, tc.body, tc.o)
			if status != tc.status || code != tc.code {
				t.Errorf("got HTTP %d %s (%s), want HTTP %d %s", status, code, msg, tc.status, tc.code)
			}
			if strings.Contains(msg, string(usageKey)) {
				t.Errorf("the answer names the key: %s", msg)
			}
			refused++
		})
	}
	st := srv.UsageStats()
	total := 0
	for _, n := range st.Refused {
		total += n
	}
	if st.Pushes != 0 || len(srv.Usage()) != 0 || total != refused {
		t.Errorf("a refused push must leave nothing behind and be counted: %+v", st)
	}
}

func TestUsagePushAgeLimit(t *testing.T) {
	srv, url := usageServer(t, simulator.WithAnyInstance())
	old := fixedNow.Add(-simulator.UsageBeginLimit - time.Minute).Format(openapi.UsageTimeLayout)
	if status, code, _ := push(t, url, body(rec(map[string]any{"instance_id": "any", "begin_time": old})), pushOpts{}); status != 500 || code != openapi.CodeBeginTimeLimit {
		t.Errorf("a begin_time over 21 days old: got HTTP %d %s", status, code)
	}
	if status, code, _ := push(t, url, body(rec(map[string]any{"instance_id": "any"})), pushOpts{}); status != 200 || code != openapi.CodeSuccess {
		t.Errorf("WithAnyInstance accepts an unregistered instance: got HTTP %d %s", status, code)
	}
	if got := srv.InstanceUsage("any"); len(got.Records) != 1 || !got.Known {
		t.Errorf("got %+v", got)
	}
}

func TestUsagePushNonceReuse(t *testing.T) {
	srv, url := usageServer(t)
	o := pushOpts{nonce: "same-nonce"}
	if status, code, _ := push(t, url, body(rec(nil)), o); status != 200 || code != openapi.CodeSuccess {
		t.Fatalf("first push: HTTP %d %s", status, code)
	}
	if status, code, _ := push(t, url, body(rec(map[string]any{"metering_sn": "sn-2", "begin_time": "20260301T060000Z", "end_time": "20260301T070000Z"})), o); status != 401 || code != openapi.CodeIllegalToken {
		t.Errorf("a reused nonce with a valid signature: HTTP %d %s", status, code)
	}
	if n := len(srv.Usage()); n != 1 {
		t.Errorf("the replay was recorded: %d records", n)
	}
}

func TestUsagePushLedger(t *testing.T) {
	srv, url := usageServer(t)
	ok := func(b string) {
		t.Helper()
		if status, code, msg := push(t, url, b, pushOpts{}); status != 200 || code != openapi.CodeSuccess {
			t.Fatalf("HTTP %d %s %s", status, code, msg)
		}
	}
	ok(body(rec(nil), rec(map[string]any{"metering_sn": "sn-2", "begin_time": "20260301T060000Z", "end_time": "20260301T070000Z", "usage_value": 2.25})))
	ok(body(rec(map[string]any{"record_time": "20260301T080000Z"})))                       // sn-1 again: a retry
	ok(body(rec(map[string]any{"usage_value": "9"})))                                      // sn-1 with other content
	ok(body(rec(map[string]any{"metering_sn": "sn-3", "begin_time": "20260301T073000Z"}))) // overlaps sn-1
	ok(body(rec(map[string]any{"metering_sn": nil, "begin_time": "20260301T075900Z", "end_time": "20260301T080000Z"})))

	got := srv.InstanceUsage(known)
	if len(got.Records) != 4 || got.Duplicates != 1 || got.Conflicts != 1 || got.Overlaps != 1 || got.Total != 1.5+2.25+1.5+1.5 || !got.Known {
		t.Errorf("ledger %+v", got)
	}
	if st := srv.UsageStats(); st.Pushes != 5 || st.Records != 4 || st.Duplicates != 1 || st.Conflicts != 1 || st.Overlaps != 1 {
		t.Errorf("stats %+v", st)
	}

	dc := simulator.DebugClient{BaseURL: url}
	view, err := dc.InstanceUsage(context.Background(), known)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Records) != 4 || view.Records[1].UsageValue != "2.25" || view.Records[0].BeginTime != "20260301T070000Z" || view.Duplicates != 1 || view.Overlaps != 1 {
		t.Errorf("debug view %+v", view)
	}
	if err := dc.RegisterInstance(context.Background(), "inst-new", fixedNow.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if status, code, _ := push(t, url, body(rec(map[string]any{"instance_id": "inst-new", "metering_sn": "sn-9"})), pushOpts{}); status != 200 || code != openapi.CodeSuccess {
		t.Errorf("an instance registered over HTTP: HTTP %d %s", status, code)
	}
	rep, err := dc.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Instances) != 2 || rep.Instances[0].InstanceID != known || rep.Instances[1].Total != 1.5 || rep.Stats.Records != 5 {
		t.Errorf("debug report %+v", rep)
	}
	if err := dc.RegisterInstance(context.Background(), "", time.Time{}); err == nil {
		t.Error("an empty instance ID was registered")
	}
}

func TestUsagePushFromClient(t *testing.T) {
	srv, url := usageServer(t)
	c, err := openapi.NewClient(openapi.Config{Endpoint: url, AK: "AK", SK: "SK", UsageKey: usageKey, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	end := fixedNow.Add(-time.Minute)
	r := openapi.UsageRecord{InstanceID: known, RecordTime: fixedNow, BeginTime: end.Add(-time.Hour), EndTime: end, UsageValue: 0.1 + 0.2, MeteringSN: openapi.MeteringSN(known, end)}
	if err := c.PushUsage(context.Background(), []openapi.UsageRecord{r, r}); err != nil {
		t.Fatal(err)
	}
	if got := srv.InstanceUsage(known); len(got.Records) != 1 || got.Duplicates != 1 || got.Total != 0.3 {
		t.Errorf("got %+v", got)
	}
}
