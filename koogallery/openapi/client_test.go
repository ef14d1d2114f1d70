package openapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

const (
	testAK = "TESTAKTESTAKTESTAK01"
	testSK = "test-secret-key-never-in-errors"
)

var (
	usageKey = []byte("testAccessKey123")
	now      = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
)

func setup(t *testing.T, retries int) (*openapi.Client, *simulator.OpenAPIServer) {
	t.Helper()
	fake := simulator.NewOpenAPIServer(testAK, testSK, simulator.WithClock(func() time.Time { return now }), simulator.WithUsageKey(usageKey))
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := openapi.NewClient(openapi.Config{
		Endpoint: srv.URL, AK: testAK, SK: testSK, UsageKey: usageKey, Retries: retries,
		RetryBase: time.Millisecond, Timeout: 5 * time.Second, Clock: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

func TestQueryMockOrders(t *testing.T) {
	c, _ := setup(t, 0)
	for _, want := range simulator.MockOrders() {
		o, err := c.QueryOrder(context.Background(), want.OrderID, simulator.MockLineID(want.OrderID))
		if err != nil {
			t.Fatalf("%s: %v", want.OrderID, err)
		}
		line, ok := o.Line(simulator.MockLineID(want.OrderID))
		if !ok || o.OrderType != want.OrderType || line.ChargingMode != want.Lines[0].ChargingMode {
			t.Fatalf("%s: got %+v", want.OrderID, o)
		}
		if p, ok := line.Product(); !ok || p.SKUCode == "" {
			t.Fatalf("%s: no product", want.OrderID)
		}
	}
}

func TestCapturedMockResponseDecodes(t *testing.T) {
	captured := `{"orderId":"MOCKPERIODYEARNEW","orderType":"NEW","createTime":"20241121090846","orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001","chargingMode":"PERIOD","periodType":"year","periodNumber":1,"expireTime":"20251121235959","productInfo":[{"productId":"OFFI846204237451911168","skuCode":"0a4d1578-5295-46a7-92d4-7c803dccc51d","linearValue":50,"productName":"MOCK测试商品,测试规格,基础版,包周期"}],"extendParams":[{"name":"emailDomainName","value":"test.xxxx.com"},{"name":"ip","value":"127.0.0.1"}],"currency":"100","currencyAfterDiscount":"100"}],"buyerInfo":{"mobilePhone":"18688888888","email":null,"customerId":"459bbbec25d24749b2eb83be37b602a8","customerName":"mock_user_01","customerRealName":"测试用户1","customerType":0,"userId":null,"userName":null},"extendParams":[]}`
	var o openapi.Order
	if err := json.Unmarshal([]byte(captured), &o); err != nil {
		t.Fatal(err)
	}
	l, ok := o.Line("MOCKPERIODYEARNEW-000001")
	if !ok || l.PeriodNum != 1 || l.PeriodType != openapi.PeriodYear || l.Products[0].LinearValue != 50 ||
		!l.ExpireTime.Equal(time.Date(2025, 11, 21, 23, 59, 59, 0, time.UTC)) || o.Buyer.CustomerName != "mock_user_01" {
		t.Fatalf("decoded %+v", o)
	}
	if want := simulator.MockOrders()[0]; want.Lines[0].Products[0].SKUCode != l.Products[0].SKUCode {
		t.Fatal("the simulator's MOCKPERIODYEARNEW differs from the captured one")
	}
	// Loose types: numbers as strings and the other way round.
	loose := `{"orderId":"X","orderType":"NEW","createTime":"20241121090846","orderLine":[{"orderLineId":"X-1","chargingMode":"PERIOD","periodNumber":"3","productInfo":[{"skuCode":"s","linearValue":"7"}],"currency":100.5}]}`
	if err := json.Unmarshal([]byte(loose), &o); err != nil || o.Lines[0].PeriodNum != 3 || o.Lines[0].Products[0].LinearValue != 7 || o.Lines[0].Currency != "100.5" {
		t.Fatalf("loose: %+v %v", o, err)
	}
}

func TestRegisteredOrderAndUpdate(t *testing.T) {
	c, fake := setup(t, 0)
	fake.RegisterOrder(openapi.Order{OrderID: "CS1", OrderType: openapi.OrderTypeNew, CreateTime: now, Lines: []openapi.OrderLine{{
		OrderLineID: "CS1-000001", ChargingMode: openapi.ChargingPeriod, PeriodType: openapi.PeriodMonth, PeriodNum: 3,
		ExpireTime: now.AddDate(0, 3, 0), Products: []openapi.Product{{ProductID: "P", SKUCode: "gold", LinearValue: 10}},
	}}})
	fake.UpdateOrder("CS1", func(o *openapi.Order) { o.Lines[0].Products[0].SKUCode = "platinum" })
	o, err := c.QueryOrder(context.Background(), "CS1", "")
	if err != nil || o.Lines[0].Products[0].SKUCode != "platinum" || !o.Lines[0].ExpireTime.Equal(now.AddDate(0, 3, 0)) {
		t.Fatalf("got %+v, %v", o, err)
	}
}

func TestQueryOrderErrors(t *testing.T) {
	tests := []struct {
		name      string
		retries   int
		fail      func(*simulator.OpenAPIServer)
		orderID   string
		ok        bool
		queries   int
		status    int
		code      string
		retryable bool
	}{
		{"internal error then recovery", 2, func(f *simulator.OpenAPIServer) { f.FailNext("A", 2, 500, openapi.CodeInternal) }, "A", true, 3, 0, "", false},
		{"throttled then recovery", 1, func(f *simulator.OpenAPIServer) { f.FailNext("A", 1, 406, openapi.CodeThrottled) }, "A", true, 2, 0, "", false},
		{"dropped connection then recovery", 1, func(f *simulator.OpenAPIServer) { f.FailNext("A", 1, 0, "") }, "A", true, 2, 0, "", false},
		{"internal error beyond retries", 1, func(f *simulator.OpenAPIServer) { f.FailNext("A", 5, 500, openapi.CodeInternal) }, "A", false, 2, 500, openapi.CodeInternal, true},
		{"bad parameter is not retried", 3, func(f *simulator.OpenAPIServer) { f.FailNext("A", 5, 400, openapi.CodeInvalidParameter) }, "A", false, 1, 400, openapi.CodeInvalidParameter, false},
		{"no authority is not retried", 3, func(f *simulator.OpenAPIServer) { f.FailNext("A", 5, 401, openapi.CodeNoAuthority) }, "A", false, 1, 401, openapi.CodeNoAuthority, false},
		{"not found is not retried", 3, func(f *simulator.OpenAPIServer) { f.FailNext("A", 5, 500, openapi.CodeInstanceNotFound) }, "A", false, 1, 500, openapi.CodeInstanceNotFound, false},
		{"unknown order", 3, func(*simulator.OpenAPIServer) {}, "NOSUCHORDER", false, 1, 500, openapi.CodeInputFailure, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fake := setup(t, tt.retries)
			fake.RegisterOrder(openapi.Order{OrderID: "A", OrderType: openapi.OrderTypeNew, Lines: []openapi.OrderLine{{OrderLineID: "A-1"}}})
			tt.fail(fake)
			_, err := c.QueryOrder(context.Background(), tt.orderID, "")
			if got := fake.Queries(tt.orderID); got != tt.queries {
				t.Errorf("%d queries, want %d", got, tt.queries)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("want recovery, got %v", err)
				}
				return
			}
			var ae *openapi.APIError
			if !errors.As(err, &ae) || ae.HTTPStatus != tt.status || ae.Code != tt.code || ae.Retryable() != tt.retryable {
				t.Fatalf("got %v, want HTTP %d %s", err, tt.status, tt.code)
			}
			if strings.Contains(err.Error(), testSK) || strings.Contains(err.Error(), testAK) {
				t.Fatalf("error leaks credentials: %v", err)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	nf := &openapi.APIError{HTTPStatus: 500, Code: openapi.CodeInstanceNotFound}
	auth := &openapi.APIError{HTTPStatus: 401, Code: "APIGW.0301"}
	bad := &openapi.APIError{HTTPStatus: 500, Code: openapi.CodeInputFailure}
	gw := &openapi.APIError{HTTPStatus: 503}
	switch {
	case !openapi.IsNotFound(nf), openapi.IsNotFound(auth):
		t.Error("IsNotFound")
	case !openapi.IsAuth(auth), openapi.IsAuth(nf):
		t.Error("IsAuth")
	case !openapi.IsInvalidInput(bad), bad.Retryable():
		t.Error("input failure")
	case !gw.Retryable(), !openapi.IsRetryable(gw), openapi.IsRetryable(nil):
		t.Error("gateway failure")
	}
}

func TestWrongCredentials(t *testing.T) {
	fake := simulator.NewOpenAPIServer(testAK, testSK, simulator.WithClock(func() time.Time { return now }))
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, _ := openapi.NewClient(openapi.Config{Endpoint: srv.URL, AK: testAK, SK: "wrong-secret", Retries: 3, RetryBase: time.Millisecond, Clock: func() time.Time { return now }})
	_, err := c.QueryOrder(context.Background(), simulator.MockPeriodYearNew, "")
	if !openapi.IsAuth(err) || fake.Queries(simulator.MockPeriodYearNew) != 0 {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), testAK) {
		t.Fatalf("error leaks credentials: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c, _ := openapi.NewClient(openapi.Config{Endpoint: srv.URL, AK: testAK, SK: testSK, Timeout: 20 * time.Millisecond})
	_, err := c.QueryOrder(context.Background(), "A", "")
	if err == nil || !openapi.IsRetryable(err) {
		t.Fatalf("timeout: %v", err)
	}
}

func TestRotatedCredentials(t *testing.T) {
	fake := simulator.NewOpenAPIServer(testAK, testSK, simulator.WithClock(func() time.Time { return now }))
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	var cur atomic.Pointer[[2]string]
	cur.Store(&[2]string{"OLDAK", "old-secret"})
	c, err := openapi.NewClient(openapi.Config{
		Endpoint: srv.URL, Clock: func() time.Time { return now },
		Credentials: func() (string, string) { p := cur.Load(); return p[0], p[1] },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.QueryOrder(context.Background(), simulator.MockPeriodYearNew, "")
	if !openapi.IsAuth(err) {
		t.Fatalf("old credentials: want an authentication error, got %v", err)
	}
	if strings.Contains(err.Error(), "OLDAK") || strings.Contains(err.Error(), "old-secret") {
		t.Errorf("error leaks credentials: %v", err)
	}
	cur.Store(&[2]string{testAK, testSK})
	if _, err := c.QueryOrder(context.Background(), simulator.MockPeriodYearNew, ""); err != nil {
		t.Fatalf("rotated credentials: %v", err)
	}
	if _, err := openapi.NewClient(openapi.Config{Endpoint: srv.URL}); err == nil {
		t.Error("a client without AK/SK or Credentials must be refused")
	}
}
