package version

import (
	"fmt"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at build time with -ldflags "-X <this package>.Version=... -X <this package>.Commit=...";
// `make build`, `make image` and the Dockerfile do. A plain `go build` leaves the defaults, so an
// unstamped binary says so instead of claiming a release.
var (
	Version = "devel"
	Commit  = "unknown"
)

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }

// String is the one-line identity `--version` prints.
func String() string {
	return fmt.Sprintf("marketplace-operator %s (commit %s, %s)", Version, Commit, GoVersion())
}

// KeysAndValues are the logr key/value pairs that identify the build in a log line.
func KeysAndValues() []any {
	return []any{"version", Version, "commit", Commit, "goVersion", GoVersion()}
}

// NewCollector returns the marketplace_operator_build_info gauge: always 1, the build's identity
// in its labels. One series per process, so the labels cannot grow.
func NewCollector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "marketplace_operator_build_info",
		Help: "The running manager's build: version, source commit and Go release (always 1).",
		ConstLabels: prometheus.Labels{
			"version": Version, "commit": Commit, "go_version": GoVersion(),
		},
	})
	g.Set(1)
	return g
}
