package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// Metrics of the marketplace endpoint. Labels are bounded: activities and kit syncs are fixed
// sets ("unknown" when unreadable), result codes are the ones this package answers, and reasons
// are koogallery.Kind values or, for unresolved orders, a fixed list of OrderResolved reasons.
// Never an instance or order ID.
var (
	callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marketplace_callbacks_total",
		Help: "KooGallery calls answered, by activity (or kit sync) and result code.",
	}, []string{"activity", "code"})

	callbackLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "marketplace_callback_duration_seconds",
		Help:    "Time to answer a KooGallery call, by activity (or kit sync).",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"activity"})

	// callRereads counts the instance reads a call's write needed besides the cache's copy:
	// "cache_behind" when the cache did not show this replica's last write to the instance yet,
	// "refused" after a write refused by its test (a concurrent call or edit).
	callRereads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marketplace_call_rereads_total",
		Help: "Instance reads from the API server before a call's write, by reason (cache_behind, refused).",
	}, []string{"reason"})
	rereadsCacheBehind, rereadsRefused = callRereads.WithLabelValues("cache_behind"), callRereads.WithLabelValues("refused")

	signatureRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marketplace_signature_rejections_total",
		Help: "KooGallery calls refused by verification, or unverified because the endpoint was busy, by interface (basic, kit) and reason.",
	}, []string{"interface", "reason"})

	unresolvedRefusals = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marketplace_unresolved_limit_refusals_total",
		Help: "newInstance calls refused with 000005 because --marketplace-max-unresolved-instances instances already wait for an order Query Order does not resolve.",
	})

	// unresolved reports the instances whose order is not resolved, by reason (unresolved.go).
	unresolved = newUnresolvedCollector()
)

func init() {
	metrics.Registry.MustRegister(Metrics()...)
}

// Metrics returns the endpoint's Prometheus collectors. The package registers them with the
// manager's registry itself; the list is for what checks metric names, like the alerts' tests.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{callbacks, callbackLatency, callRereads, signatureRejections, unresolvedRefusals, unresolved}
}

// rejectionReason bounds the reason label even if the library grows a kind this package has
// never heard of.
func rejectionReason(k koogallery.Kind) string {
	switch k {
	case koogallery.KindMissingSignature, koogallery.KindMalformedSign, koogallery.KindSignatureMismatch,
		koogallery.KindMissingTimestamp, koogallery.KindBadTimestamp, koogallery.KindStaleTimestamp,
		koogallery.KindFutureTimestamp, koogallery.KindMissingNonce, koogallery.KindBadNonce,
		koogallery.KindReplayedNonce, koogallery.KindReplayCacheFull, koogallery.KindNoKey,
		koogallery.KindRepeatedParam, koogallery.KindBusy:
		return string(k)
	}
	return "other"
}
