package openapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

func TestUsageSignVector(t *testing.T) {
	if got := openapi.UsageSign([]byte("testAccessKey123"), "1680508066618", "abc123", []byte(`{"usage_records":[]}`)); got != "bQPd3rBcL6ucva7u8BKP7p2jLBuc3cPRJqaZQr8c5tA=" {
		t.Fatalf("got %s", got)
	}
}

func TestMeteringSN(t *testing.T) {
	end := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	sn := openapi.MeteringSN("inst-1", end)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sn) {
		t.Fatalf("SN %q is not 64 lowercase hex digits", sn)
	}
	if again := openapi.MeteringSN("inst-1", end.Add(300*time.Millisecond).In(time.FixedZone("UTC+8", 8*3600))); again != sn {
		t.Errorf("the same period (to the second, any zone) gave %s, want %s", again, sn)
	}
	long := fmt.Sprintf("%064d", 7)
	for _, other := range []string{openapi.MeteringSN("inst-2", end), openapi.MeteringSN("inst-1", end.Add(time.Second)), openapi.MeteringSN(long, end)} {
		if other == sn || len(other) != 64 {
			t.Errorf("another period gave %s", other)
		}
	}
}

func TestFormatUsageValue(t *testing.T) {
	for in, want := range map[float64]string{99: "99", 1.5: "1.5", 0.1 + 0.2: "0.3", 12345678.1234: "12345678.1234", 0.0001: "0.0001"} {
		if got := openapi.FormatUsageValue(in); got != want {
			t.Errorf("FormatUsageValue(%v) = %s, want %s", in, got, want)
		}
	}
}

// usageSetup is a client against a simulator that knows instances inst-0…inst-2.
func usageSetup(t *testing.T, retries int) (*openapi.Client, *simulator.OpenAPIServer) {
	t.Helper()
	c, fake := setup(t, retries)
	for i := range 3 {
		fake.RegisterInstance(fmt.Sprintf("inst-%d", i), now.Add(-20*24*time.Hour))
	}
	return c, fake
}

// hourly returns n consecutive one-hour records of the known instances, ending before now.
func hourly(n int) []openapi.UsageRecord {
	out := make([]openapi.UsageRecord, 0, n)
	for i := range n {
		id := fmt.Sprintf("inst-%d", i%3)
		end := now.Add(-time.Duration(i/3) * time.Hour)
		out = append(out, openapi.UsageRecord{InstanceID: id, RecordTime: now, BeginTime: end.Add(-time.Hour), EndTime: end,
			UsageValue: 0.1 + 0.2, MeteringSN: openapi.MeteringSN(id, end)})
	}
	return out
}

func TestPushUsageBatches(t *testing.T) {
	c, fake := usageSetup(t, 0)
	res, err := c.PushUsageBatches(context.Background(), hourly(250), openapi.UsagePushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Count != 100 || res[1].First != 100 || res[2].Count != 50 {
		t.Fatalf("batches %+v, want 100, 100, 50", res)
	}
	for _, b := range res {
		if b.Err != nil || b.Code != openapi.CodeSuccess || b.HTTPStatus != http.StatusOK || b.Attempts != 1 {
			t.Errorf("batch %+v", b)
		}
	}
	st := fake.UsageStats()
	if st.Pushes != 3 || st.Records != 250 || st.Duplicates+st.Overlaps+st.Conflicts != 0 {
		t.Errorf("server stats %+v", st)
	}
	if got := fake.InstanceUsage("inst-0"); len(got.Records) != 84 || got.Total != 25.2 {
		t.Errorf("inst-0 got %d records totalling %v, want 84 and 25.2", len(got.Records), got.Total)
	}

	res, err = c.PushUsageBatches(context.Background(), hourly(1000), openapi.UsagePushOptions{BatchSize: openapi.MaxUsageRecords})
	if err != nil || len(res) != 1 {
		t.Fatalf("1000 records in one batch: %v, %+v", err, res)
	}
	if st := fake.UsageStats(); st.Records != 1000 || st.Duplicates != 250 {
		t.Errorf("the second push's first 250 records repeat the first push's SNs: stats %+v", st)
	}
	if _, err := c.PushUsageBatches(context.Background(), hourly(1), openapi.UsagePushOptions{BatchSize: openapi.MaxUsageRecords + 1}); err == nil {
		t.Error("a batch size above the API's limit was accepted")
	}
}

func TestPushUsageRetries(t *testing.T) {
	c, fake := usageSetup(t, 2)
	recs := hourly(3)
	fake.FailNext(simulator.UsageFailKey, 1, http.StatusInternalServerError, openapi.CodeInternal)
	fake.LoseUsageAnswers(1)
	res, err := c.PushUsageBatches(context.Background(), recs, openapi.UsagePushOptions{})
	if err != nil {
		t.Fatalf("a push with metering_sn is retried: %v", err)
	}
	if res[0].Attempts != 3 || res[0].Code != openapi.CodeSuccess {
		t.Errorf("batch %+v, want 3 attempts (refused, answer lost, accepted)", res[0])
	}
	if st := fake.UsageStats(); st.Records != 3 || st.Duplicates != 3 || st.Refused[openapi.CodeInternal] != 1 {
		t.Errorf("the repeat after the lost answer must be de-duplicated, not billed: %+v", st)
	}

	noSN := []openapi.UsageRecord{recs[0]}
	noSN[0].MeteringSN, noSN[0].EndTime, noSN[0].BeginTime = "", now.Add(-5*time.Hour), now.Add(-6*time.Hour)
	fake.FailNext(simulator.UsageFailKey, 1, http.StatusInternalServerError, openapi.CodeInternal)
	res, err = c.PushUsageBatches(context.Background(), noSN, openapi.UsagePushOptions{})
	if err == nil || res[0].Attempts != 1 || res[0].Code != openapi.CodeInternal || res[0].HTTPStatus != http.StatusInternalServerError {
		t.Fatalf("a push without metering_sn must not be repeated after a server error: %v, %+v", err, res)
	}
	fake.FailNext(simulator.UsageFailKey, 1, http.StatusNotAcceptable, openapi.CodeThrottled)
	if res, err := c.PushUsageBatches(context.Background(), noSN, openapi.UsagePushOptions{}); err != nil || res[0].Attempts != 2 {
		t.Fatalf("throttling is retried even without metering_sn: %v, %+v", err, res)
	}
}

func TestPushUsageBatchFailures(t *testing.T) {
	c, fake := usageSetup(t, 3)
	recs := hourly(6)
	recs[1].InstanceID = "never-created"
	recs[1].MeteringSN = openapi.MeteringSN("never-created", recs[1].EndTime)
	recs[4].UsageValue = 1.00001
	res, err := c.PushUsageBatches(context.Background(), recs, openapi.UsagePushOptions{BatchSize: 2})
	var ae *openapi.APIError
	if !errors.As(err, &ae) || ae.Code != openapi.CodeInstanceNotFound {
		t.Fatalf("want the first failure, MKT.9001, got %v", err)
	}
	want := []struct {
		code     string
		attempts int
		ok       bool
	}{{openapi.CodeInstanceNotFound, 1, false}, {openapi.CodeSuccess, 1, true}, {"", 0, false}}
	for i, w := range want {
		if b := res[i]; b.Code != w.code || b.Attempts != w.attempts || (b.Err == nil) != w.ok {
			t.Errorf("batch %d: %+v, want code %q after %d attempts", i, b, w.code, w.attempts)
		}
	}
	if st := fake.UsageStats(); st.Records != 2 {
		t.Errorf("only the middle batch is billed: %+v", st)
	}

	wrongKey, err := openapi.NewClient(openapi.Config{Endpoint: endpointOf(t, fake), AK: testAK, SK: testSK, UsageKey: []byte("other"),
		Retries: 3, RetryBase: time.Millisecond, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	res, err = wrongKey.PushUsageBatches(context.Background(), hourly(3), openapi.UsagePushOptions{BatchSize: 1})
	if !errors.As(err, &ae) || ae.Code != openapi.CodeInvalidBodySign || ae.Retryable() {
		t.Fatalf("got %v", err)
	}
	if res[0].Attempts != 1 || !errors.Is(res[1].Err, openapi.ErrUsageNotSent) || !errors.Is(res[2].Err, openapi.ErrUsageNotSent) || res[2].Attempts != 0 {
		t.Errorf("a bad key fails every batch alike, so the rest are not sent: %+v", res)
	}
}

func endpointOf(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPushUsageRefusedLocally(t *testing.T) {
	c, fake := usageSetup(t, 0)
	for _, bad := range []openapi.UsageRecord{
		{InstanceID: "inst-0", RecordTime: now, BeginTime: now.Add(-time.Hour), EndTime: now, UsageValue: 0},
		{InstanceID: "inst-0", RecordTime: now, BeginTime: now.Add(-time.Hour), EndTime: now, UsageValue: 1.00001},
		{InstanceID: "inst-0", RecordTime: now, BeginTime: now.Add(-time.Hour), EndTime: now, UsageValue: openapi.MaxUsageValue},
		{InstanceID: "", RecordTime: now, BeginTime: now.Add(-time.Hour), EndTime: now, UsageValue: 1},
		{InstanceID: "inst-0", RecordTime: now, BeginTime: now, EndTime: now, UsageValue: 1},
		{InstanceID: "inst-0", RecordTime: now, BeginTime: now, EndTime: now.Add(-time.Second), UsageValue: 1},
	} {
		res, err := c.PushUsageBatches(context.Background(), []openapi.UsageRecord{bad}, openapi.UsagePushOptions{})
		if err == nil || res[0].Attempts != 0 {
			t.Errorf("sent %+v", bad)
		}
	}
	if st := fake.UsageStats(); st.Pushes+len(st.Refused) != 0 {
		t.Errorf("invalid records reached the API: %+v", st)
	}
	noKey, _ := openapi.NewClient(openapi.Config{Endpoint: "http://127.0.0.1:1", AK: testAK, SK: testSK})
	if err := noKey.PushUsage(context.Background(), hourly(1)); err == nil {
		t.Fatal("push without a usage key")
	}
}

func TestDecodeUsageRoundTrip(t *testing.T) {
	recs := hourly(2)
	b, err := openapi.EncodeUsage(recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openapi.DecodeUsage(b)
	if err != nil || len(got) != 2 || got[1].MeteringSN != recs[1].MeteringSN || got[0].UsageValue != 0.3 || !got[1].EndTime.Equal(recs[1].EndTime) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}
