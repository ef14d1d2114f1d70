package fleetmetrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// MetricName is the gauge's name.
const MetricName = "marketplace_instances"

// Label values outside the API's own phases and reasons.
const (
	// Pending is the phase and the reason of an instance the reconciler has not written a status
	// for yet: it has not seen it, is not running, or is paused since before its first pass.
	Pending = "Pending"
	// Other stands for any phase or reason this build does not know, so that the labels stay
	// bounded whatever a newer reconciler or a hand edit writes.
	Other = "Other"
)

// Phases are the values of the phase label: the phases the reconciler derives (see the
// MarketplaceInstance status.phase field), then Other.
var Phases = []string{
	"Pending", "Provisioning", "Ready", "Upgrading", "Frozen", "Releasing", "Failed", "Paused", "Debug", Other,
}

// Reasons are the values of the reason label: the API's condition reasons, Pending, then Other.
var Reasons = []string{
	Pending,
	saasv1alpha1.ReasonResolved, saasv1alpha1.ReasonQueryFailed, saasv1alpha1.ReasonOrderNotFound,
	saasv1alpha1.ReasonUnknownSKU, saasv1alpha1.ReasonAmbiguousPlan, saasv1alpha1.ReasonPlanNotFound,
	saasv1alpha1.ReasonDebugOrder, saasv1alpha1.ReasonProvisioning, saasv1alpha1.ReasonUpgrading,
	saasv1alpha1.ReasonAvailable, saasv1alpha1.ReasonRenderFailed, saasv1alpha1.ReasonApplyFailed,
	saasv1alpha1.ReasonConflict, saasv1alpha1.ReasonDowngradeRefused, saasv1alpha1.ReasonFrozenByOrder,
	saasv1alpha1.ReasonExpired, saasv1alpha1.ReasonActive, saasv1alpha1.ReasonRetaining,
	saasv1alpha1.ReasonBackingUp, saasv1alpha1.ReasonBackupFailed, saasv1alpha1.ReasonDeleting,
	saasv1alpha1.ReasonPaused, saasv1alpha1.ReasonNotPaused, saasv1alpha1.ReasonTemplatesValid,
	saasv1alpha1.ReasonInvalidTemplate,
	Other,
}

// Classify returns the phase and reason labels of an instance. The reason is why the instance is
// where it is: the Ready condition's reason (which names what blocks it: an unresolved order, a
// freeze, a failed apply), except that a Ready instance that is also Degraded reports the
// Degraded reason, because a refused downgrade leaves the tenant Ready on the plan the buyer no
// longer pays for.
func Classify(inst *saasv1alpha1.MarketplaceInstance) (phase, reason string) {
	phase = bounded(inst.Status.Phase, Phases)
	if inst.Status.Phase == "" {
		phase = Pending
	}
	ready := meta.FindStatusCondition(inst.Status.Conditions, saasv1alpha1.ConditionReady)
	switch {
	case ready == nil:
		reason = Pending
	case ready.Status == metav1.ConditionTrue:
		reason = ready.Reason
		if d := meta.FindStatusCondition(inst.Status.Conditions, saasv1alpha1.ConditionDegraded); d != nil && d.Status == metav1.ConditionTrue {
			reason = d.Reason
		}
	default:
		reason = ready.Reason
	}
	return phase, bounded(reason, Reasons)
}

func bounded(v string, known []string) string {
	if slices.Contains(known, v) {
		return v
	}
	return Other
}

// collectTimeout bounds a scrape's wait for a cache that is still syncing.
const collectTimeout = 5 * time.Second

// Collector reports marketplace_instances at scrape time.
type Collector struct {
	reader client.Reader
	desc   *prometheus.Desc
}

// New returns a Collector that lists instances from r, the manager's cache: reading the API
// server on every scrape would cost it a list of every instance.
func New(r client.Reader) *Collector {
	return &Collector{
		reader: r,
		desc: prometheus.NewDesc(MetricName,
			"MarketplaceInstances by phase (status.phase; Pending before the first status) and reason (the Ready condition's, or the Degraded condition's for a Ready instance that is degraded; Other for anything unknown), as this replica's cache sees them.",
			[]string{"phase", "reason"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. Without a started, synced cache it reports nothing,
// rather than a zero that would read as an empty fleet. Only the pairs that have instances are
// reported.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	list := &saasv1alpha1.MarketplaceInstanceList{}
	// The items are the cache's own objects, only read here.
	if err := c.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	type key struct{ phase, reason string }
	counts := map[key]int{}
	for i := range list.Items {
		p, r := Classify(&list.Items[i])
		counts[key{p, r}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k.phase, k.reason)
	}
}
