package webhook

import (
	"flag"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

func TestMaxUnresolvedInstancesFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
		bad  bool
	}{
		{args: nil, want: DefaultMaxUnresolvedInstances},
		{args: []string{"--marketplace-max-unresolved-instances=20"}, want: 20},
		{args: []string{"--marketplace-max-unresolved-instances=0"}, want: NoUnresolvedLimit},
		{args: []string{"--marketplace-max-unresolved-instances=-1"}, bad: true},
		{args: []string{"--marketplace-max-unresolved-instances=many"}, bad: true},
	} {
		var o Options
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o.BindFlags(fs)
		err := fs.Parse(tc.args)
		if tc.bad {
			if err == nil {
				t.Errorf("%v accepted", tc.args)
			}
			continue
		}
		o.setDefaults()
		if err != nil || o.MaxUnresolvedInstances != tc.want {
			t.Errorf("%v: %d, %v; want %d", tc.args, o.MaxUnresolvedInstances, err, tc.want)
		}
	}
	var zero Options
	zero.setDefaults()
	if zero.MaxUnresolvedInstances != DefaultMaxUnresolvedInstances {
		t.Errorf("zero Options: limit %d, want the default", zero.MaxUnresolvedInstances)
	}
}

func TestUnresolvedReason(t *testing.T) {
	cond := func(status metav1.ConditionStatus, reason string) []metav1.Condition {
		return []metav1.Condition{{Type: saasv1alpha1.ConditionOrderResolved, Status: status, Reason: reason}}
	}
	deleted := metav1.Now()
	for _, tc := range []struct {
		name  string
		inst  saasv1alpha1.MarketplaceInstance
		want  string
		count bool
	}{
		{"no condition yet", saasv1alpha1.MarketplaceInstance{}, reasonPending, true},
		{"unknown", saasv1alpha1.MarketplaceInstance{Status: saasv1alpha1.MarketplaceInstanceStatus{Conditions: cond(metav1.ConditionUnknown, "Whatever")}}, reasonPending, true},
		{"resolved", saasv1alpha1.MarketplaceInstance{Status: saasv1alpha1.MarketplaceInstanceStatus{Conditions: cond(metav1.ConditionTrue, saasv1alpha1.ReasonResolved)}}, "", false},
		{"query failing", saasv1alpha1.MarketplaceInstance{Status: saasv1alpha1.MarketplaceInstanceStatus{Conditions: cond(metav1.ConditionFalse, saasv1alpha1.ReasonQueryFailed)}}, saasv1alpha1.ReasonQueryFailed, true},
		{"no plan", saasv1alpha1.MarketplaceInstance{Status: saasv1alpha1.MarketplaceInstanceStatus{Conditions: cond(metav1.ConditionFalse, saasv1alpha1.ReasonUnknownSKU)}}, saasv1alpha1.ReasonUnknownSKU, true},
		{"a reason nobody listed", saasv1alpha1.MarketplaceInstance{Status: saasv1alpha1.MarketplaceInstanceStatus{Conditions: cond(metav1.ConditionFalse, "Surprise")}}, reasonOther, true},
		{"a False condition claiming Pending", saasv1alpha1.MarketplaceInstance{Status: saasv1alpha1.MarketplaceInstanceStatus{Conditions: cond(metav1.ConditionFalse, reasonPending)}}, reasonOther, true},
		{"being deleted", saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted}}, "", false},
	} {
		got, ok := unresolvedReason(&tc.inst)
		if got != tc.want || ok != tc.count {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.count)
		}
	}
}
