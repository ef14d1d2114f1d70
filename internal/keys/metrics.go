package keys

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the reloads. They say whether and when the directory was read, never what it holds.
var (
	reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marketplace_keys_reloads_total",
		Help: "Reads of the keys directory that found changed keys and put them in use.",
	})
	reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marketplace_keys_reload_failures_total",
		Help: "Reads of the keys directory that failed (a required file missing or empty, an unreadable file, a bad RSA key); the previous keys stay in use.",
	})
	lastReloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "marketplace_keys_last_reload_success_timestamp_seconds",
		Help: "When the keys directory was last read successfully (changed or not), in Unix seconds.",
	})
)

// Metrics returns the reloads' Prometheus collectors, for the program to register.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{reloads, reloadFailures, lastReloadSuccess}
}

// observeLoad records one read of the directory.
func observeLoad(now time.Time, changed bool, err error) {
	if err != nil {
		reloadFailures.Inc()
		return
	}
	if changed {
		reloads.Inc()
	}
	lastReloadSuccess.Set(float64(now.UnixNano()) / 1e9)
}
