package packaging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallsAgree renders both installs with monitoring on, the chart as release
// "marketplace-operator" in the same namespace and with the Secret config/default expects, and
// checks they ship the same thing: CRDs, RBAC rules, the manager's pod (security, probes,
// resources, shutdown, keys mount), Services, NetworkPolicy, PodDisruptionBudget, ServiceMonitor
// endpoints and alerts. The chart's own tests cover its options; this one catches drift between
// config/ and charts/ whichever side moves.
func TestInstallsAgree(t *testing.T) {
	t.Parallel()
	kubectl, helm := tools(t)

	dir := t.TempDir()
	copyTree(t, filepath.Join(repo(t), "config"), filepath.Join(dir, "config"))
	enablePrometheus(t, filepath.Join(dir, "config", "default", "kustomization.yaml"))
	kust := decode(t, run(t, kubectl, "kustomize", filepath.Join(dir, "config", "default")))

	const fullname = "marketplace-operator" // the release name contains the chart name
	chartObjs := decode(t, run(t, helm, "template", fullname, "charts/marketplace-operator", "--namespace", namespace,
		"--kube-version", "1.30.0", "--include-crds", "--set", "keys.existingSecret="+kustomizeKeysSecret,
		"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true"))

	expectCRDs(t, kust)
	expectCRDs(t, withoutChartCRDMetadata(chartObjs))
	expectManagerRole(t, kust, "marketplace-operator-manager-role", "marketplace-operator-manager-rolebinding", kustomizeServiceAccount)
	expectManagerRole(t, chartObjs, fullname+"-manager", fullname+"-manager", fullname)
	expectHardenedDeployment(t, kust, deployment{name: kustomizeDeployment, serviceAccount: kustomizeServiceAccount, keysSecret: kustomizeKeysSecret})
	expectHardenedDeployment(t, chartObjs, deployment{name: fullname, serviceAccount: fullname, keysSecret: kustomizeKeysSecret})
	if s := append(kust.all("Secret"), chartObjs.all("Secret")...); len(s) != 0 {
		t.Errorf("with the keys Secret managed by the user, the installs render %v", s.names())
	}

	// The same pod, field by field.
	kPod := field(t, kust.get(t, "Deployment", kustomizeDeployment).Object, "spec", "template", "spec").(map[string]any)
	hPod := field(t, chartObjs.get(t, "Deployment", fullname).Object, "spec", "template", "spec").(map[string]any)
	for _, f := range []string{"securityContext", "automountServiceAccountToken", "terminationGracePeriodSeconds", "volumes"} {
		expectEqual(t, "pod "+f, hPod[f], kPod[f])
	}
	kc, hc := field(t, kPod, "containers", 0).(map[string]any), field(t, hPod, "containers", 0).(map[string]any)
	for _, f := range []string{"name", "ports", "livenessProbe", "readinessProbe", "lifecycle", "resources", "securityContext", "volumeMounts"} {
		expectEqual(t, "container "+f, hc[f], kc[f])
	}
	// Every flag config/default sets, the chart sets too (it may state a few defaults more).
	hArgs := map[string]bool{}
	for _, a := range hc["args"].([]any) {
		hArgs[a.(string)] = true
	}
	for _, a := range kc["args"].([]any) {
		if !hArgs[a.(string)] {
			t.Errorf("config/default passes %s, the chart does not: %v", a, hc["args"])
		}
	}

	// Leader election Role and metrics-reader ClusterRole.
	expectEqual(t, "leader election Role rules",
		chartObjs.get(t, "Role", fullname+"-leader-election").Object["rules"],
		kust.get(t, "Role", "marketplace-operator-leader-election-role").Object["rules"])
	expectEqual(t, "metrics-reader rules",
		chartObjs.get(t, "ClusterRole", fullname+"-metrics-reader").Object["rules"],
		kust.get(t, "ClusterRole", "marketplace-operator-metrics-reader").Object["rules"])

	// Services: the marketplace one has the same name in both; metrics the same port.
	expectEqual(t, "marketplace Service ports",
		field(t, chartObjs.get(t, "Service", kustomizeMarketplaceSvc).Object, "spec", "ports"),
		field(t, kust.get(t, "Service", kustomizeMarketplaceSvc).Object, "spec", "ports"))
	expectEqual(t, "metrics Service ports",
		field(t, chartObjs.get(t, "Service", fullname+"-metrics").Object, "spec", "ports"),
		field(t, kust.get(t, "Service", kustomizeMetricsSvc).Object, "spec", "ports"))

	expectEqual(t, "NetworkPolicy rules",
		field(t, chartObjs.get(t, "NetworkPolicy", fullname).Object, "spec", "ingress"),
		field(t, kust.get(t, "NetworkPolicy", "marketplace-operator-allow-traffic").Object, "spec", "ingress"))
	expectEqual(t, "PodDisruptionBudget minAvailable",
		field(t, chartObjs.get(t, "PodDisruptionBudget", fullname).Object, "spec", "minAvailable"),
		field(t, kust.get(t, "PodDisruptionBudget", kustomizeDeployment).Object, "spec", "minAvailable"))

	// Monitoring: both scrape only their metrics Service the same way, and alert alike.
	expectMonitoring(t, kust, "marketplace-operator-controller-manager-metrics-monitor", kustomizeMetricsSvc, "marketplace-operator-alerts")
	expectMonitoring(t, chartObjs, fullname, fullname+"-metrics", fullname)
	kSM := kust.get(t, "ServiceMonitor", "marketplace-operator-controller-manager-metrics-monitor").Object["spec"].(map[string]any)
	hSM := chartObjs.get(t, "ServiceMonitor", fullname).Object["spec"].(map[string]any)
	for _, f := range []string{"jobLabel"} {
		expectEqual(t, "ServiceMonitor "+f, hSM[f], kSM[f])
	}
	hEndpoint := field(t, hSM, "endpoints", 0).(map[string]any)
	delete(hEndpoint, "interval") // a chart value; Prometheus's default in config/
	expectEqual(t, "ServiceMonitor endpoint", hEndpoint, field(t, kSM, "endpoints", 0))
}

// enablePrometheus uncomments the prometheus component in a copy of config/default, as the
// README tells users to.
func enablePrometheus(t *testing.T, kustomization string) {
	t.Helper()
	b, err := os.ReadFile(kustomization) //nolint:gosec // a test's own copy
	if err != nil {
		t.Fatal(err)
	}
	enabled := strings.Replace(strings.Replace(string(b), "# components:", "components:", 1), "#   - ../prometheus", "  - ../prometheus", 1)
	if enabled == string(b) {
		t.Fatal("config/default/kustomization.yaml no longer has the commented `components: - ../prometheus` the README tells users to uncomment")
	}
	if err := os.WriteFile(kustomization, []byte(enabled), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withoutChartCRDMetadata returns objs with the chart's own additions to its CRDs (its labels and
// the keep policy, checked by TestHelmCRDs) removed, so they compare with config/crd/bases.
func withoutChartCRDMetadata(objs objects) objects {
	out := make(objects, 0, len(objs))
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			o = o.DeepCopy()
			o.SetLabels(nil)
			annotations := o.GetAnnotations()
			delete(annotations, "helm.sh/resource-policy")
			o.SetAnnotations(annotations)
		}
		out = append(out, o)
	}
	return out
}
