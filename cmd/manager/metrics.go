package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/fleetmetrics"
	"github.com/marketplace-operator/marketplace-operator/internal/keys"
	"github.com/marketplace-operator/marketplace-operator/internal/version"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// operatorMetrics are the collectors the manager registers itself, beside the ones the webhook
// package and controller-runtime register on import: build info, key reloads, Query Order, and
// the fleet gauge read from cache (the manager's cache).
func operatorMetrics(cache client.Reader) []prometheus.Collector {
	cs := []prometheus.Collector{version.NewCollector(), fleetmetrics.New(cache)}
	cs = append(cs, keys.Metrics()...)
	return append(cs, openapi.Metrics()...)
}

func registerMetrics(reg prometheus.Registerer, cache client.Reader) error {
	for _, c := range operatorMetrics(cache) {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}
