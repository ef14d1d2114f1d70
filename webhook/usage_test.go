package webhook

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// queryInstance answers usageInfo for pay-per-use instances, Ready or not (a frozen tenant still
// has its usage to show), from the ledger the usage controller keeps, with the plan's dashboard.
func TestQueryInstanceUsageInfo(t *testing.T) {
	measured := testNow.Add(-90 * time.Second).Truncate(time.Second)
	metered := readyInstance("cs1-000001", "inst-ppu")
	metered.Status.Plan = "demo-metered"
	metered.Status.Usage = &saasv1alpha1.UsageStatus{Value: "12.5", StatisticalTime: metav1.NewTime(measured)}
	frozen := readyInstance("cs2-000001", "inst-frozen")
	frozen.Spec.Order.OrderID, frozen.Spec.Order.OrderLineID = "CS2", "CS2-000001"
	frozen.Status.Plan = "demo-metered"
	frozen.Status.Conditions[0].Status = metav1.ConditionFalse
	frozen.Status.Usage = &saasv1alpha1.UsageStatus{Value: "3", StatisticalTime: metav1.NewTime(measured)}
	plain := readyInstance("cs3-000001", "inst-plain")
	plain.Spec.Order.OrderID, plain.Spec.Order.OrderLineID = "CS3", "CS3-000001"
	plan := &saasv1alpha1.MarketplacePlan{ObjectMeta: metav1.ObjectMeta{Name: "demo-metered"},
		Spec: saasv1alpha1.MarketplacePlanSpec{Metering: &saasv1alpha1.MeteringSpec{Unit: "request",
			Source: saasv1alpha1.MeteringAppReported, DashboardURL: "https://usage.example.com/"}}}
	s, _ := newFakeServer(t, Options{}, metered, frozen, plain, plan)

	_, raw := do(t, s, signedBasic(DefaultPath, testBasicKey, queryBody(t, "inst-ppu,inst-frozen,inst-plain"), testNow), testBasicKey)
	var rep koogallery.QueryInstanceReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	usage := map[string][]koogallery.UsageInfo{}
	for _, info := range rep.Info {
		usage[info.InstanceID] = info.UsageInfo
	}
	want := koogallery.UsageInfo{UsageValue: 12.5, StatisticalTime: koogallery.FormatStatisticalTime(measured), DashboardURL: "https://usage.example.com/"}
	if got := usage["inst-ppu"]; len(got) != 1 || got[0] != want {
		t.Errorf("usageInfo %+v, want %+v (reply %s)", got, want, raw)
	}
	if got := usage["inst-frozen"]; len(got) != 1 || got[0].UsageValue != 3 {
		t.Errorf("frozen instance usageInfo %+v", got)
	}
	if got, ok := usage["inst-plain"]; !ok || got != nil {
		t.Errorf("an instance that is not metered answers usageInfo %+v (present %v)", got, ok)
	}
}
