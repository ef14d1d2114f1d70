//go:build bench

package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
)

// apiMix is what a provisioning run asked of the API server, from every client, per tenant:
// requests by verb and resource ("APPLY namespaces", "PATCH marketplaceinstances/status"), and
// watch events sent, by resource, in number ("watch events deployments") and in KiB ("watch KiB
// deployments"), from the API server's own counters.
type apiMix map[string]float64

func mixSince(before, after map[string]float64, tenants int) apiMix {
	mix := apiMix{}
	for series, v := range after {
		d := v - before[series]
		if d <= 0 {
			continue
		}
		name, labels := parseSeries(series)
		resource := labels["resource"]
		if g := labels["group"]; g != "" {
			resource += "." + g
		}
		switch name {
		case "apiserver_request_total":
			if sub := labels["subresource"]; sub != "" {
				resource += "/" + sub
			}
			mix[labels["verb"]+" "+resource] += d / float64(tenants)
		case "apiserver_watch_events_total":
			mix["watch events "+resource] += d / float64(tenants)
		case "apiserver_watch_events_sizes_sum":
			mix["watch KiB "+resource] += d / 1024 / float64(tenants)
		}
	}
	return mix
}

// parseSeries splits a series key of rig.ParseMetrics, name{a="x",b="y"}, into the name and the
// labels. Label values here never hold a quote or a comma.
func parseSeries(series string) (string, map[string]string) {
	name, rest, ok := strings.Cut(series, "{")
	labels := map[string]string{}
	if !ok {
		return name, labels
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			labels[k] = strings.Trim(v, `"`)
		}
	}
	return name, labels
}

// mixTable puts the API mixes of one size's first pair side by side, only the rows where they
// differ by a tenth of a request (or KiB) per tenant or more: what each side asks of the API
// server beyond the others.
func mixTable(w func(string, ...any), orders int, names []string, mixes []apiMix) {
	keys := map[string]bool{}
	for _, m := range mixes {
		for k := range m {
			keys[k] = true
		}
	}
	var rows []string
	for k := range keys {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, m := range mixes {
			lo, hi = math.Min(lo, m[k]), math.Max(hi, m[k])
		}
		if hi-lo >= 0.1 {
			rows = append(rows, k)
		}
	}
	if len(rows) == 0 {
		return
	}
	sort.Strings(rows)
	w("What the API server served per tenant, %d orders, pair 1, from every client (the control plane's own requests and watches included), where the runs differ by 0.1 or more:", orders)
	w("")
	w("| request or watch | %s |", strings.Join(names, " | "))
	w("|---|%s", strings.Repeat("---:|", len(names)))
	for _, k := range rows {
		line := "| " + k + " |"
		for _, m := range mixes {
			line += fmt.Sprintf(" %.2f |", m[k])
		}
		w("%s", line)
	}
	w("")
}

func TestParseSeries(t *testing.T) {
	name, labels := parseSeries(`apiserver_request_total{code="201",group="apps",resource="deployments",subresource="",verb="APPLY"}`)
	if name != "apiserver_request_total" || labels["resource"] != "deployments" || labels["group"] != "apps" ||
		labels["verb"] != "APPLY" || labels["subresource"] != "" {
		t.Errorf("parseSeries: %q %v", name, labels)
	}
	mix := mixSince(map[string]float64{`apiserver_request_total{group="",resource="namespaces",verb="GET"}`: 1},
		map[string]float64{
			`apiserver_request_total{group="",resource="namespaces",verb="GET"}`:                                                      3,
			`apiserver_request_total{group="saas.marketplace.dev",resource="marketplaceinstances",subresource="status",verb="PATCH"}`: 4,
			`apiserver_watch_events_sizes_sum{group="apps",resource="deployments"}`:                                                   4096,
		}, 2)
	want := apiMix{"GET namespaces": 1, "PATCH marketplaceinstances.saas.marketplace.dev/status": 2, "watch KiB deployments.apps": 2}
	if fmt.Sprint(mix) != fmt.Sprint(want) {
		t.Errorf("mixSince = %v, want %v", mix, want)
	}
}
