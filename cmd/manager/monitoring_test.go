package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// fromOutside are the series the alerts and the dashboard may read that the manager's own
// collectors do not describe: controller-runtime's vectors, which have no series (so cannot be
// gathered) until a controller or the leader election uses them, and Prometheus's own up.
var fromOutside = []string{
	"controller_runtime_reconcile_errors_total", // controller-runtime: pkg/internal/controller/metrics
	"controller_runtime_reconcile_total",        // controller-runtime: pkg/internal/controller/metrics
	"workqueue_depth",                           // controller-runtime: pkg/metrics/workqueue.go
	"leader_election_master_status",             // controller-runtime: pkg/metrics/leaderelection.go
	"up",                                        // Prometheus, per scraped target
}

// exported returns the names of every series the manager exports: what its collectors describe
// (a histogram as its _bucket, _sum and _count series), what the registry gathers, and
// fromOutside.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, n := range fromOutside {
		names[n] = true
	}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range append(webhook.Metrics(), operatorMetrics(nil)...) {
			c.Describe(descs)
		}
		close(descs)
	}()
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			names[m[1]+suffix] = true
		}
	}
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		names[f.GetName()] = true
	}
	return names
}

// promQLWords are the identifiers of PromQL that are not series names.
var promQLWords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
}

var (
	promQLStrings = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	// Label matchers, range and subquery selectors, and grouping lists hold no series names.
	promQLBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promQLGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promQLToken    = regexp.MustCompile(`[0-9][0-9a-zA-Z_.]*|[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
)

// seriesNames returns the series names a PromQL expression selects: every identifier that is not
// a function, a keyword, a label or a number.
func seriesNames(expr string) []string {
	expr = promQLStrings.ReplaceAllString(expr, `""`)
	expr = promQLBraces.ReplaceAllString(expr, " ")
	expr = promQLGrouping.ReplaceAllString(expr, " ")
	var out []string
	for _, m := range promQLToken.FindAllStringSubmatch(expr, -1) {
		tok := m[0]
		if m[1] != "" || tok[0] >= '0' && tok[0] <= '9' || promQLWords[strings.ToLower(tok)] {
			continue
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	sort.Strings(out)
	return out
}

func TestSeriesNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`absent(up{job="marketplace-operator"} == 1)`:                                                        {"up"},
		`sum by (activity) (rate(a_total{code!~"0|1"}[10m])) / sum by (activity) (rate(a_total[10m])) > 0.1`: {"a_total"},
		`histogram_quantile(0.95, sum by (le) (rate(h_bucket{job="$job"}[$__rate_interval])))`:               {"h_bucket"},
		`time() - max(ts_seconds) > 600 and on (pod) b offset 5m unless c`:                                   {"b", "c", "ts_seconds"},
		`sum(x{reason=~"a|b"}) > 1/60 or vector(1e3)`:                                                        {"x"},
	} {
		if got := seriesNames(expr); !slices.Equal(got, want) {
			t.Errorf("seriesNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

type alertRule struct {
	Alert, Expr, For string
	Labels           map[string]string
	Annotations      map[string]string
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "prometheus", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Spec struct {
			Groups []struct{ Rules []map[string]any }
		}
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var rules []alertRule
	for _, g := range doc.Spec.Groups {
		for _, raw := range g.Rules {
			// A misspelt key would silently drop, say, the annotations.
			for k := range raw {
				if !slices.Contains([]string{"alert", "expr", "for", "labels", "annotations"}, k) {
					t.Errorf("rule %v: unknown key %q", raw["alert"], k)
				}
			}
			j, err := json.Marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			var r alertRule
			if err := json.Unmarshal(j, &r); err != nil {
				t.Fatal(err)
			}
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		t.Fatal("config/prometheus/rules.yaml has no rules")
	}
	return rules
}

// Every alert reads series the manager exports, is routed by severity, says what happened, and
// links its runbook: the README section "Runbook: <alert>".
func TestAlerts(t *testing.T) {
	names := exported(t)
	seen := map[string]bool{}
	for _, r := range alertRules(t) {
		if r.Alert == "" || seen[r.Alert] {
			t.Errorf("rule %q: every rule is an alert with a name of its own", r.Alert)
		}
		seen[r.Alert] = true
		series := seriesNames(r.Expr)
		if len(series) == 0 {
			t.Errorf("alert %s: expr %q selects no series", r.Alert, r.Expr)
		}
		for _, s := range series {
			if !names[s] {
				t.Errorf("alert %s reads %s, which the manager does not export", r.Alert, s)
			}
		}
		if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
			t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, sev)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("alert %s needs a summary and a description", r.Alert)
		}
		if got, want := r.Annotations["runbook_url"], "README.md#runbook-"+strings.ToLower(r.Alert); got != want {
			t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, got, want)
		}
	}
}

func dashboardFile(parts ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot()}, parts...)...)
}

// The dashboard reads series the manager exports, from the data source its variable picks, and
// the Helm chart ships the same JSON as the kustomize component.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardFile("config", "grafana", "marketplace-operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	chart, err := os.ReadFile(dashboardFile("charts", "marketplace-operator", "files", "grafana", "marketplace-operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(chart) != string(b) {
		t.Error("the chart's files/grafana/marketplace-operator.json differs from config/grafana/marketplace-operator.json; copy it")
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" {
		t.Error("the dashboard needs a fixed uid, so that links to it survive a reload")
	}
	names := exported(t)
	read := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q with %d queries, want ${datasource} and at least one", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			if !strings.Contains(q.Expr, `job="$job"`) {
				t.Errorf("panel %q: %q does not select job=\"$job\"", p.Title, q.Expr)
			}
			for _, s := range seriesNames(q.Expr) {
				read[s] = true
				if !names[s] {
					t.Errorf("panel %q reads %s, which the manager does not export", p.Title, s)
				}
			}
		}
	}
	// The panels an SRE looks for first.
	for _, s := range []string{
		"marketplace_callbacks_total", "marketplace_callback_duration_seconds_bucket", "marketplace_signature_rejections_total",
		"marketplace_instances", "controller_runtime_reconcile_errors_total", "marketplace_query_order_requests_total",
		"marketplace_usage_push_records_total", "marketplace_usage_push_failures_total", "marketplace_usage_periods_behind",
	} {
		if !read[s] {
			t.Errorf("no panel reads %s", s)
		}
	}
}

// The manager's own collectors register beside the endpoint's without a clash of names.
func TestRegisterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(webhook.Metrics()...)
	if err := registerMetrics(reg, nil); err != nil {
		t.Fatal(err)
	}
	if err := registerMetrics(reg, nil); err == nil {
		t.Error("registering twice succeeded: the registry does not hold the collectors")
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every alert's runbook_url names a section of the README.
func TestRunbooksInREADME(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if h := strings.TrimLeft(line, "#"); h != line && strings.HasPrefix(h, " ") {
			anchors[githubAnchor(h)] = true
		}
	}
	for _, r := range alertRules(t) {
		anchor := strings.TrimPrefix(r.Annotations["runbook_url"], "README.md#")
		if !anchors[anchor] {
			t.Errorf("alert %s: the README has no section %q (a heading \"Runbook: %s\")", r.Alert, anchor, r.Alert)
		}
	}
}
