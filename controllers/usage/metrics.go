package usage

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	recordsPushed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marketplace_usage_push_records_total",
		Help: "Usage records KooGallery acknowledged (a period sent again after a restart counts again).",
	})
	pushFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marketplace_usage_push_failures_total",
		Help: "Usage pushes that failed; the periods stay pending and are sent again after a backoff.",
	})
	periodsBehind = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "marketplace_usage_periods_behind",
		Help: "Metering periods that are over but not yet acknowledged by KooGallery, over all instances.",
	})
)

func init() {
	metrics.Registry.MustRegister(recordsPushed, pushFailures, periodsBehind)
}

// behindGauge keeps each instance's periods behind, so the gauge is their sum.
type behindGauge struct {
	mu  sync.Mutex
	per map[string]int
	sum int
}

func (b *behindGauge) set(name string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.per == nil {
		b.per = map[string]int{}
	}
	b.sum += n - b.per[name]
	if n == 0 {
		delete(b.per, name)
	} else {
		b.per[name] = n
	}
	periodsBehind.Set(float64(b.sum))
}
