package usage_test

import (
	"context"
	"math"
	"slices"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// span is a time the tenant was Ready.
type span struct{ from, to time.Time }

// hourUnits is seconds in ten-thousandths of an hour, rounded, as the controller converts them.
func hourUnits(seconds int64) int64 { return (seconds*25 + 4) / 9 }

func runningSeconds(spans []span, until time.Time) int64 {
	var s int64
	for _, sp := range spans {
		to := sp.to
		if to.After(until) {
			to = until
		}
		if to.After(sp.from) {
			s += int64(to.Sub(sp.from) / time.Second)
		}
	}
	return s
}

// wantRecords are the records a RunningTime tenant that ran during spans must have pushed, from
// start up to until, on a schedule of interval: one per period with running time, each from the
// previous period's end, with the hours it ran.
func wantRecords(id string, spans []span, start, until time.Time, interval time.Duration) []openapi.UsageRecord {
	var out []openapi.UsageRecord
	from := start
	for from.Before(until) {
		end := from.Truncate(interval).Add(interval)
		if end.After(until) {
			end = until
		}
		v := hourUnits(runningSeconds(spans, end)) - hourUnits(runningSeconds(spans, from))
		if v > 0 {
			out = append(out, openapi.UsageRecord{InstanceID: id, BeginTime: from, EndTime: end, UsageValue: float64(v) / 1e4,
				MeteringSN: openapi.MeteringSN(id, end)})
		}
		from = end
	}
	return out
}

// received is what the simulator accepted for id, oldest period first, without record_time.
func received(id string) []openapi.UsageRecord {
	recs := koo.InstanceUsage(id).Records
	sort.Slice(recs, func(i, j int) bool { return recs[i].BeginTime.Before(recs[j].BeginTime) })
	for i := range recs {
		recs[i].RecordTime = time.Time{}
		recs[i].BeginTime, recs[i].EndTime = recs[i].BeginTime.UTC(), recs[i].EndTime.UTC()
		recs[i].UsageValue = math.Round(recs[i].UsageValue*1e4) / 1e4
	}
	return recs
}

// pushedUntil waits until the instance's ledger is acknowledged up to at least t.
func pushedUntil(t *testing.T, name string, at time.Time) *saasv1alpha1.UsageStatus {
	t.Helper()
	var u *saasv1alpha1.UsageStatus
	NewWithT(t).Eventually(func(g Gomega) {
		u = get(g, name).Status.Usage
		g.Expect(u).NotTo(BeNil())
		g.Expect(u.PushedUntil.Time).NotTo(BeTemporally("<", at), "ledger %+v", u)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return u
}

// setState patches spec.state as the endpoint does for updateInstanceStatus.
func setState(t *testing.T, name string, state saasv1alpha1.InstanceState) {
	t.Helper()
	g := NewWithT(t)
	inst := get(g, name)
	p := client.MergeFrom(inst.DeepCopy())
	inst.Spec.State = state
	g.Expect(k8s.Patch(context.Background(), inst, p)).To(Succeed())
}

// metricSum sums a metric's series in the manager's registry, as its metrics endpoint serves
// them: those whose label has value, or every series when label is empty.
func metricSum(g Gomega, name, label, value string) float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var n float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" || slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == label && l.GetValue() == value
			}) {
				n += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return n
}

// instanceReconciles reads the instance controller's reconcile counter.
func instanceReconciles(g Gomega) float64 {
	return metricSum(g, "controller_runtime_reconcile_total", "controller", "marketplaceinstance")
}

// periodsBehind reads marketplace_usage_periods_behind.
func periodsBehind(g Gomega) float64 { return metricSum(g, "marketplace_usage_periods_behind", "", "") }
