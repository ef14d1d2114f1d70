package keys_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace-operator/marketplace-operator/internal/keys"
)

// reloadMetrics gathers the reload metrics by name.
func reloadMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(keys.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			out[mf.GetName()] = m.GetCounter().GetValue()
		} else {
			out[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return out
}

const (
	reloaded    = "marketplace_keys_reloads_total"
	failed      = "marketplace_keys_reload_failures_total"
	lastSuccess = "marketplace_keys_last_reload_success_timestamp_seconds"
)

// A failed reload is counted and leaves the last success where it was; a reload that changes
// the keys is counted and moves it; an unchanged read only moves it.
func TestReloadMetrics(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, base())
	s, err := keys.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := reloadMetrics(t)
	if start[lastSuccess] == 0 {
		t.Fatal("the first load is not recorded as a success")
	}

	if err := os.Remove(filepath.Join(dir, "sk")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil {
		t.Fatal("a directory without sk reloaded")
	}
	broken := reloadMetrics(t)
	if broken[failed]-start[failed] != 1 || broken[reloaded] != start[reloaded] || broken[lastSuccess] != start[lastSuccess] {
		t.Errorf("after a failed reload: %v, before: %v", broken, start)
	}

	files := base()
	files["sk"] = "SK2"
	write(t, dir, files)
	if changed, err := s.Reload(); err != nil || !changed {
		t.Fatalf("rotated sk: changed=%v err=%v", changed, err)
	}
	fixed := reloadMetrics(t)
	if fixed[reloaded]-broken[reloaded] != 1 || fixed[failed] != broken[failed] || fixed[lastSuccess] <= broken[lastSuccess] {
		t.Errorf("after a rotation: %v, before: %v", fixed, broken)
	}

	if changed, err := s.Reload(); err != nil || changed {
		t.Fatalf("unchanged directory: changed=%v err=%v", changed, err)
	}
	same := reloadMetrics(t)
	if same[reloaded] != fixed[reloaded] || same[failed] != fixed[failed] || same[lastSuccess] < fixed[lastSuccess] {
		t.Errorf("after an unchanged read: %v, before: %v", same, fixed)
	}
}
