package simulator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

func TestLoadRefreshInstance(t *testing.T) {
	sim, m := newPair(t, 0)
	var ids []string
	for i := range 2 {
		order := simulator.LoadOrderID("BUY", i)
		created, err := sim.NewInstance(context.Background(), koogallery.NewInstanceRequest{
			OrderID: order, OrderLineID: simulator.MockLineID(order), BusinessID: "b"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, created.InstanceID)
	}
	start := time.Now()
	res, err := sim.Load(context.Background(), simulator.LoadConfig{Count: 4, Concurrency: 1, OrderPrefix: "RENEW",
		Activity: koogallery.ActivityRefreshInstance, InstanceID: strings.Join(ids, ",")})
	if err != nil || res.Succeeded != 4 {
		t.Fatalf("refreshInstance load %+v %v", res, err)
	}
	// Two renewals each, the second one (calls 2 and 3) later than the first.
	for k, id := range ids {
		in, _ := m.Instance(id)
		if want := start.AddDate(1, 0, 0).Add(time.Duration(k+2) * time.Second); in.ExpireTime.Before(want.Truncate(time.Second)) {
			t.Errorf("%s expires %s, want the second renewal's %s or later", id, in.ExpireTime, want)
		}
	}
	if _, err := sim.Load(context.Background(), simulator.LoadConfig{Count: 1, Activity: koogallery.ActivityRefreshInstance}); err == nil {
		t.Error("a refreshInstance load without instance IDs")
	}
}
