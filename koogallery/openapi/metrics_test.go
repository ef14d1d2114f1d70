package openapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// queryOrderMetrics gathers the client's metrics: Query Order attempts by outcome, and the
// number of attempts the latency histogram has seen.
func queryOrderMetrics(t *testing.T) (map[string]float64, uint64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(openapi.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byOutcome, timed := map[string]float64{}, uint64(0)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "marketplace_query_order_requests_total":
				byOutcome[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			case "marketplace_query_order_duration_seconds":
				timed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return byOutcome, timed
}

// Every attempt is counted under its outcome, retries included, and timed.
func TestQueryOrderMetrics(t *testing.T) {
	before, timedBefore := queryOrderMetrics(t)
	for _, o := range openapi.Outcomes {
		if _, ok := before[o]; !ok {
			t.Errorf("outcome %s is not reported before it happens", o)
		}
	}

	c, fake := setup(t, 2)
	fake.RegisterOrder(openapi.Order{OrderID: "A", OrderType: openapi.OrderTypeNew, Lines: []openapi.OrderLine{{OrderLineID: "A-1"}}})
	fake.FailNext("A", 1, 500, openapi.CodeInternal)
	if _, err := c.QueryOrder(context.Background(), "A", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.QueryOrder(context.Background(), "NOSUCHORDER", ""); err == nil {
		t.Fatal("an unknown order resolved")
	}
	fake.FailNext("A", 1, 401, openapi.CodeNoAuthority)
	if _, err := c.QueryOrder(context.Background(), "A", ""); !openapi.IsAuth(err) {
		t.Fatalf("want an auth failure, got %v", err)
	}

	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	slow, err := openapi.NewClient(openapi.Config{Endpoint: hung.URL, AK: testAK, SK: testSK, Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.QueryOrder(context.Background(), "A", ""); err == nil {
		t.Fatal("a hung server answered")
	}

	after, timedAfter := queryOrderMetrics(t)
	want := map[string]float64{
		openapi.OutcomeSuccess: 1, openapi.OutcomeServerError: 1, openapi.OutcomeInvalidInput: 1,
		openapi.OutcomeAuth: 1, openapi.OutcomeNetwork: 1,
	}
	for _, o := range openapi.Outcomes {
		if got := after[o] - before[o]; got != want[o] {
			t.Errorf("outcome %s: %v attempts counted, want %v", o, got, want[o])
		}
	}
	if got := timedAfter - timedBefore; got != 5 {
		t.Errorf("%d attempts timed, want 5", got)
	}
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, openapi.OutcomeSuccess},
		{&openapi.APIError{HTTPStatus: 500, Code: openapi.CodeInstanceNotFound}, openapi.OutcomeNotFound},
		{&openapi.APIError{HTTPStatus: 404}, openapi.OutcomeNotFound},
		{&openapi.APIError{HTTPStatus: 500, Code: openapi.CodeInputFailure}, openapi.OutcomeInvalidInput},
		{&openapi.APIError{HTTPStatus: 401, Code: "APIGW.0301"}, openapi.OutcomeAuth},
		{&openapi.APIError{HTTPStatus: 406, Code: openapi.CodeThrottled}, openapi.OutcomeThrottled},
		{&openapi.APIError{HTTPStatus: 429}, openapi.OutcomeThrottled},
		{&openapi.APIError{HTTPStatus: 500, Code: openapi.CodeInternal}, openapi.OutcomeServerError},
		{&openapi.APIError{HTTPStatus: 503}, openapi.OutcomeServerError},
		{&openapi.APIError{HTTPStatus: 200, Code: openapi.CodeSuccess, Message: "response has no orderInfo"}, openapi.OutcomeError},
		{fmt.Errorf("calling open API: %w", context.Canceled), openapi.OutcomeCanceled},
		{errors.New("something else"), openapi.OutcomeError},
	} {
		if got := openapi.Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
