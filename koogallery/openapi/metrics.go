package openapi

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one Query Order attempt, the values of the outcome label: a bounded class of the
// answer, never an order ID or a server message.
const (
	OutcomeSuccess      = "success"
	OutcomeNotFound     = "not_found"
	OutcomeInvalidInput = "invalid_input"
	OutcomeAuth         = "auth"
	OutcomeThrottled    = "throttled"
	OutcomeServerError  = "server_error"
	OutcomeError        = "error"
	OutcomeNetwork      = "network"
	OutcomeCanceled     = "canceled"
)

// Outcomes lists every outcome label value.
var Outcomes = []string{
	OutcomeSuccess, OutcomeNotFound, OutcomeInvalidInput, OutcomeAuth, OutcomeThrottled,
	OutcomeServerError, OutcomeError, OutcomeNetwork, OutcomeCanceled,
}

var (
	queryOrderRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marketplace_query_order_requests_total",
		Help: "Query Order HTTP attempts (each retry counts), by outcome: success; not_found and invalid_input (KooGallery does not know the order); auth (AK/SK or permissions); throttled; server_error; error (any other answer); network (no answer, including timeouts); canceled (by the caller).",
	}, []string{"outcome"})

	queryOrderDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "marketplace_query_order_duration_seconds",
		Help:    "Time of one Query Order HTTP attempt, whatever its outcome.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
)

func init() {
	// Every outcome exists from the start, so that a rate over it is 0 rather than absent.
	for _, o := range Outcomes {
		queryOrderRequests.WithLabelValues(o)
	}
}

// Metrics returns the client's Prometheus collectors, for the program to register: the library
// registers nothing itself.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{queryOrderRequests, queryOrderDuration}
}

// Outcome classifies the result of one open-API attempt for the outcome label.
func Outcome(err error) string {
	if err == nil {
		return OutcomeSuccess
	}
	if e, ok := asAPIError(err); ok {
		switch {
		case IsNotFound(err):
			return OutcomeNotFound
		case IsInvalidInput(err):
			return OutcomeInvalidInput
		case IsAuth(err):
			return OutcomeAuth
		case e.Throttled():
			return OutcomeThrottled
		case e.Retryable():
			return OutcomeServerError
		}
		return OutcomeError
	}
	var ne *networkError
	if errors.As(err, &ne) {
		return OutcomeNetwork
	}
	if errors.Is(err, context.Canceled) {
		return OutcomeCanceled
	}
	return OutcomeError
}

// observeQueryOrder records one Query Order attempt that started at start.
func observeQueryOrder(start time.Time, err error) {
	queryOrderDuration.Observe(time.Since(start).Seconds())
	queryOrderRequests.WithLabelValues(Outcome(err)).Inc()
}
