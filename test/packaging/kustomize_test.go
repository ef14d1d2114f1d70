package packaging

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Names config/default gives the manager's objects (namePrefix marketplace-operator-).
const (
	kustomizeDeployment     = "marketplace-operator-controller-manager"
	kustomizeServiceAccount = "marketplace-operator-controller-manager"
	kustomizeKeysSecret     = "marketplace-operator-keys"
	kustomizeMarketplaceSvc = "marketplace-operator-marketplace"
	kustomizeMetricsSvc     = "marketplace-operator-controller-manager-metrics-service"
)

func TestKustomizeDefault(t *testing.T) {
	t.Parallel()
	kubectl, _ := tools(t)
	objs := decode(t, run(t, kubectl, "kustomize", "config/default"))

	ns := objs.get(t, "Namespace", namespace)
	if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace Pod Security enforce %q, want restricted", got)
	}
	expectNamespaced(t, objs)
	expectCRDs(t, objs)
	expectHardenedDeployment(t, objs, deployment{name: kustomizeDeployment, serviceAccount: kustomizeServiceAccount,
		keysSecret: kustomizeKeysSecret})
	expectManagerRole(t, objs, "marketplace-operator-manager-role", "marketplace-operator-manager-rolebinding", kustomizeServiceAccount)
	expectServices(t, objs, kustomizeDeployment, kustomizeMarketplaceSvc, kustomizeMetricsSvc)
	objs.get(t, "ServiceAccount", kustomizeServiceAccount)
	objs.get(t, "NetworkPolicy", "marketplace-operator-allow-traffic")
	objs.get(t, "PodDisruptionBudget", "marketplace-operator-controller-manager")
	if s := objs.all("Secret"); len(s) != 0 {
		t.Errorf("config/default must not ship a Secret (the keys are the user's): %v", s.names())
	}
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		if len(objs.all(kind)) != 0 {
			t.Errorf("config/default renders a %s: the prometheus component must stay optional", kind)
		}
	}
}

// TestKustomizePrometheusComponent enables config/prometheus the way the README says, in a copy of
// config/, and checks the ServiceMonitor and alerts join the install under its names.
func TestKustomizePrometheusComponent(t *testing.T) {
	t.Parallel()
	kubectl, _ := tools(t)
	dir := t.TempDir()
	copyTree(t, filepath.Join(repo(t), "config"), filepath.Join(dir, "config"))
	enablePrometheus(t, filepath.Join(dir, "config", "default", "kustomization.yaml"))
	objs := decode(t, run(t, kubectl, "kustomize", filepath.Join(dir, "config", "default")))
	expectNamespaced(t, objs)
	expectMonitoring(t, objs, "marketplace-operator-controller-manager-metrics-monitor", kustomizeMetricsSvc, "marketplace-operator-alerts")
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o750)
		}
		b, err := os.ReadFile(path) //nolint:gosec // walking the repository's config/
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
