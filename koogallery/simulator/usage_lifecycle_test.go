package simulator_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

func TestMockOnDemandOrder(t *testing.T) {
	srv := simulator.NewOpenAPIServer("AK", "SK", simulator.WithClock(clock))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c, err := openapi.NewClient(openapi.Config{Endpoint: hs.URL, AK: "AK", SK: "SK", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.QueryOrder(context.Background(), simulator.MockOnDemand, simulator.MockLineID(simulator.MockOnDemand))
	if err != nil {
		t.Fatal(err)
	}
	line, _ := o.Line(simulator.MockLineID(simulator.MockOnDemand))
	p, _ := line.Product()
	if line.ChargingMode != openapi.ChargingOnDemand || !line.ExpireTime.IsZero() || line.PeriodType != "" || line.PeriodNum != 0 {
		t.Errorf("a pay-per-use line has chargingMode ON_DEMAND and no expiry or period: %+v", line)
	}
	period, err := c.QueryOrder(context.Background(), simulator.MockPeriodYearNew, "")
	if err != nil {
		t.Fatal(err)
	}
	pp, _ := period.Lines[0].Product()
	if p.SKUCode != simulator.MockOnDemandSKU || p.ProductID != simulator.MockOnDemandProductID || p.SKUCode == pp.SKUCode || p.ProductID == pp.ProductID {
		t.Errorf("the pay-per-use product must be told apart from the yearly one by SKU: %+v vs %+v", p, pp)
	}
}

func TestPayPerUseLifecycle(t *testing.T) {
	sim, m := newPair(t, 1)
	koo, url := usageServer(t)
	c, err := openapi.NewClient(openapi.Config{Endpoint: url, AK: "AK", SK: "SK", UsageKey: usageKey, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var registered time.Time
	steps, err := sim.Lifecycle(context.Background(), simulator.LifecycleOptions{
		OrderID: simulator.MockOnDemand,
		Register: func(_ context.Context, id string, start time.Time) error {
			registered = start
			koo.RegisterInstance(id, start)
			return nil
		},
		BeforeRelease: func(ctx context.Context, id string) (string, error) {
			end := registered.Add(30 * time.Second)
			err := c.PushUsage(ctx, []openapi.UsageRecord{{InstanceID: id, RecordTime: end, BeginTime: registered, EndTime: end, UsageValue: 2, MeteringSN: openapi.MeteringSN(id, end)}})
			got := koo.InstanceUsage(id)
			return fmt.Sprintf("%d records", len(got.Records)), err
		},
	})
	if err != nil {
		t.Fatalf("lifecycle: %v", err)
	}
	var names []string
	for _, st := range steps {
		names = append(names, st.Name)
	}
	if got, want := strings.Join(names, ","), "create,poll,register,freeze,unfreeze,usage,release"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if steps[5].Detail != "1 records" || !registered.Equal(fixedNow) {
		t.Errorf("usage step %+v, registered at %s", steps[5], registered)
	}
	id := strings.TrimPrefix(steps[0].Detail, "instanceId ")
	in, ok := m.Instance(id)
	if !ok || !in.Released || in.Frozen || !in.ExpireTime.IsZero() || in.OrderID != simulator.MockOnDemand {
		t.Errorf("a pay-per-use instance is never renewed or upgraded: %+v", in)
	}
	if _, err := sim.Lifecycle(context.Background(), simulator.LifecycleOptions{ChargingMode: openapi.ChargingOneTime}); err == nil {
		t.Error("a lifecycle for a charging mode it cannot drive must be refused")
	}
}
