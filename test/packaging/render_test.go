package packaging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

const (
	// namespace is where config/default installs, and where these tests install the chart.
	namespace = "marketplace-operator-system"
	keysDir   = "/etc/marketplace/keys"
)

// tools returns the kubectl and helm of the control plane folder, failing the test with the fix
// when KUBEBUILDER_ASSETS is unset: nothing here is skipped.
func tools(t *testing.T) (kubectl, helm string) {
	t.Helper()
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	kubectl, helm = filepath.Join(assets, "kubectl"), filepath.Join(assets, "helm")
	for _, bin := range []string{kubectl, helm} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v (run `make control-plane`)", bin, err)
		}
	}
	return kubectl, helm
}

// repo is the repository root (go test runs in this package's folder).
func repo(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// run executes bin in the repository root and returns its standard output, failing the test
// with standard error when it fails.
func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	out, err := tryRun(t, bin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return out
}

// tryRun executes bin in the repository root; the error carries standard error.
func tryRun(t *testing.T, bin string, args ...string) ([]byte, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...) //nolint:gosec // the control plane's own kubectl and helm
	cmd.Dir = repo(t)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// objects holds rendered manifests by kind and name.
type objects []*unstructured.Unstructured

func decode(t *testing.T, manifests []byte) objects {
	t.Helper()
	var objs objects
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decoding manifests: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func (objs objects) all(kind string) objects {
	var out objects
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func (objs objects) get(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs.all(kind) {
		if o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q among %v", kind, name, objs.names())
	return nil
}

func (objs objects) names() []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

// readObject decodes the single object of a repository file.
func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo(t), path)) //nolint:gosec // fixed repository files
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, b)
	if len(objs) != 1 {
		t.Fatalf("%s: want one object, found %v", path, objs.names())
	}
	return objs[0]
}

// field returns the value at path (map keys; an int indexes a list), failing when it is absent.
func field(t *testing.T, obj any, path ...any) any {
	t.Helper()
	cur := obj
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok || m[k] == nil {
				t.Fatalf("no field %v", path[:i+1])
			}
			cur = m[k]
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("no item %v", path[:i+1])
			}
			cur = l[k]
		}
	}
	return cur
}

// expectEqual compares two decoded values, printing both as YAML when they differ.
func expectEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(normalize(t, got), normalize(t, want)) {
		g, _ := yaml.Marshal(got)
		w, _ := yaml.Marshal(want)
		t.Errorf("%s differ.\ngot:\n%s\nwant:\n%s", what, g, w)
	}
}

// normalize round-trips v through JSON so that int64 and float64 numbers compare equal.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// deployment is what both installs must say about the manager's pods.
type deployment struct {
	name, serviceAccount, keysSecret string
}

// expectHardenedDeployment checks the manager Deployment: two leader-elected replicas spread
// over nodes, probes, resources, a restricted security context, and the keys Secret mounted
// read-only where --marketplace-keys-dir points.
func expectHardenedDeployment(t *testing.T, objs objects, want deployment) {
	t.Helper()
	d := objs.get(t, "Deployment", want.name)
	if got := d.GetNamespace(); got != namespace {
		t.Errorf("Deployment namespace %q, want %q", got, namespace)
	}
	if got := field(t, d.Object, "spec", "replicas"); normalize(t, got) != float64(2) {
		t.Errorf("replicas %v, want 2", got)
	}
	pod := field(t, d.Object, "spec", "template", "spec").(map[string]any)
	if got := pod["serviceAccountName"]; got != want.serviceAccount {
		t.Errorf("serviceAccountName %v, want %s", got, want.serviceAccount)
	}
	if pod["automountServiceAccountToken"] != true {
		t.Error("automountServiceAccountToken is not true")
	}
	if grace, ok := normalize(t, pod["terminationGracePeriodSeconds"]).(float64); !ok || grace < 40 {
		t.Errorf("terminationGracePeriodSeconds %v: too short for the preStop pause and --shutdown-timeout", pod["terminationGracePeriodSeconds"])
	}
	expectEqual(t, "pod securityContext", pod["securityContext"], map[string]any{
		"runAsNonRoot": true, "fsGroup": 65532, "seccompProfile": map[string]any{"type": "RuntimeDefault"}})
	anti := field(t, pod, "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", 0, "podAffinityTerm").(map[string]any)
	if anti["topologyKey"] != "kubernetes.io/hostname" {
		t.Errorf("pod anti-affinity topologyKey %v, want kubernetes.io/hostname", anti["topologyKey"])
	}
	podLabels := field(t, d.Object, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range field(t, anti, "labelSelector", "matchLabels").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("anti-affinity selects %s=%v, which the pods do not carry", k, v)
		}
	}

	containers := pod["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("want one container, found %d", len(containers))
	}
	c := containers[0].(map[string]any)
	expectEqual(t, "container securityContext", c["securityContext"], map[string]any{
		"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "runAsUser": 65532,
		"capabilities": map[string]any{"drop": []any{"ALL"}}})
	args := map[string]bool{}
	for _, a := range c["args"].([]any) {
		args[a.(string)] = true
	}
	for _, a := range []string{"--leader-elect", "--health-probe-bind-address=:8081", "--marketplace-bind-address=:8090",
		"--marketplace-keys-dir=" + keysDir} {
		if !args[a] {
			t.Errorf("manager args lack %s: %v", a, c["args"])
		}
	}
	ports := map[string]any{}
	for _, p := range c["ports"].([]any) {
		ports[p.(map[string]any)["name"].(string)] = normalize(t, p.(map[string]any)["containerPort"])
	}
	for name, port := range map[string]float64{"marketplace": 8090, "probes": 8081} {
		if ports[name] != port {
			t.Errorf("container port %s = %v, want %v", name, ports[name], port)
		}
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		get := field(t, c, probe, "httpGet").(map[string]any)
		if get["path"] != path || get["port"] != "probes" {
			t.Errorf("%s %v, want %s on the probes port (8081)", probe, get, path)
		}
	}
	for _, kind := range []string{"requests", "limits"} {
		r := field(t, c, "resources", kind).(map[string]any)
		if r["cpu"] == nil || r["memory"] == nil {
			t.Errorf("resources.%s %v lack cpu or memory", kind, r)
		}
	}
	if got := field(t, c, "lifecycle", "preStop", "sleep", "seconds"); got == nil {
		t.Error("no preStop pause")
	}

	var mounted bool
	for _, m := range c["volumeMounts"].([]any) {
		m := m.(map[string]any)
		if m["name"] == "keys" {
			mounted = m["mountPath"] == keysDir && m["readOnly"] == true
		}
	}
	if !mounted {
		t.Errorf("the keys volume is not mounted read-only at %s: %v", keysDir, c["volumeMounts"])
	}
	var secret map[string]any
	for _, v := range pod["volumes"].([]any) {
		if v := v.(map[string]any); v["name"] == "keys" {
			secret, _ = v["secret"].(map[string]any)
		}
	}
	if secret == nil || secret["secretName"] != want.keysSecret {
		t.Errorf("keys volume %v, want Secret %s", secret, want.keysSecret)
	}
	// 0400, made group-readable for the manager by the kubelet through fsGroup; nobody else.
	if secret != nil && normalize(t, secret["defaultMode"]) != float64(0o400) {
		t.Errorf("keys defaultMode %v, want 0400 (256)", secret["defaultMode"])
	}
}

// expectManagerRole checks that the ClusterRole bound to the manager carries exactly the rules
// controller-gen generated into config/rbac/role.yaml, that it is the only ClusterRole with
// resource rules, and that the binding grants it to want.serviceAccount.
func expectManagerRole(t *testing.T, objs objects, role, binding, serviceAccount string) {
	t.Helper()
	generated := readObject(t, "config/rbac/role.yaml")
	expectEqual(t, "ClusterRole "+role+" rules and config/rbac/role.yaml", objs.get(t, "ClusterRole", role).Object["rules"], generated.Object["rules"])
	for _, cr := range objs.all("ClusterRole") {
		if cr.GetName() == role {
			continue
		}
		for _, r := range cr.Object["rules"].([]any) {
			if r.(map[string]any)["resources"] != nil {
				t.Errorf("ClusterRole %s grants resources beyond the generated role: %v", cr.GetName(), r)
			}
		}
	}
	b := objs.get(t, "ClusterRoleBinding", binding)
	expectEqual(t, "ClusterRoleBinding "+binding, map[string]any{"roleRef": b.Object["roleRef"], "subjects": b.Object["subjects"]},
		map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": serviceAccount, "namespace": namespace}},
		})
	if n := len(objs.all("ClusterRoleBinding")); n != 1 {
		t.Errorf("%d ClusterRoleBindings, want only the manager's", n)
	}
	for _, r := range objs.all("Role") {
		for _, rule := range r.Object["rules"].([]any) {
			for _, res := range rule.(map[string]any)["resources"].([]any) {
				if res != "leases" && res != "events" {
					t.Errorf("Role %s grants %v; leader election needs leases and events only", r.GetName(), res)
				}
			}
		}
	}
}

// crdFiles returns the generated CRDs of config/crd/bases by file name.
func crdFiles(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join(repo(t), "config", "crd", "bases")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name())) //nolint:gosec // the repository's CRDs
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	if len(files) == 0 {
		t.Fatal("config/crd/bases is empty: run `make manifests`")
	}
	return files
}

// expectCRDs checks that objs holds exactly the CRDs of config/crd/bases, unchanged.
func expectCRDs(t *testing.T, objs objects) {
	t.Helper()
	want := map[string]*unstructured.Unstructured{}
	for name, b := range crdFiles(t) {
		crds := decode(t, b)
		if len(crds) != 1 {
			t.Fatalf("%s: want one CRD", name)
		}
		want[crds[0].GetName()] = crds[0]
	}
	got := objs.all("CustomResourceDefinition")
	if len(got) != len(want) {
		t.Errorf("%d CRDs, want the %d of config/crd/bases", len(got), len(want))
	}
	for _, crd := range got {
		w, ok := want[crd.GetName()]
		if !ok {
			t.Errorf("CRD %s is not in config/crd/bases", crd.GetName())
			continue
		}
		expectEqual(t, "CRD "+crd.GetName(), crd.Object, w.Object)
	}
}

// expectServices checks the marketplace Service (port 80 to the container's 8090) and the
// metrics Service (8443, https) select the manager's pods.
func expectServices(t *testing.T, objs objects, deploymentName, marketplace, metrics string) {
	t.Helper()
	podLabels := field(t, objs.get(t, "Deployment", deploymentName).Object, "spec", "template", "metadata", "labels").(map[string]any)
	for name, port := range map[string][2]any{marketplace: {80, "marketplace"}, metrics: {8443, "https"}} {
		svc := objs.get(t, "Service", name)
		p := field(t, svc.Object, "spec", "ports", 0).(map[string]any)
		if normalize(t, p["port"]) != normalize(t, port[0]) || p["targetPort"] != port[1] {
			t.Errorf("Service %s port %v → %v, want %v → %v", name, p["port"], p["targetPort"], port[0], port[1])
		}
		for k, v := range field(t, svc.Object, "spec", "selector").(map[string]any) {
			if podLabels[k] != v {
				t.Errorf("Service %s selects %s=%v, which the manager's pods do not carry", name, k, v)
			}
		}
	}
}

// selects reports whether a label selector's matchLabels all appear in labels.
func selects(selector map[string]any, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// expectMonitoring checks the ServiceMonitor scrapes exactly the metrics Service, and the
// PrometheusRule carries the alerts of config/prometheus/rules.yaml.
func expectMonitoring(t *testing.T, objs objects, monitor, metricsService, rule string) {
	t.Helper()
	sm := objs.get(t, "ServiceMonitor", monitor)
	sel := field(t, sm.Object, "spec", "selector", "matchLabels").(map[string]any)
	var scraped []string
	for _, svc := range objs.all("Service") {
		if selects(sel, svc.GetLabels()) {
			scraped = append(scraped, svc.GetName())
		}
	}
	if len(scraped) != 1 || scraped[0] != metricsService {
		t.Errorf("ServiceMonitor %s selects Services %v, want [%s]", monitor, scraped, metricsService)
	}
	if got := field(t, sm.Object, "spec", "endpoints", 0, "port"); got != "https" {
		t.Errorf("ServiceMonitor port %v, want https", got)
	}
	// The alerts find the operator as job="marketplace-operator" through jobLabel.
	jobLabel := field(t, sm.Object, "spec", "jobLabel").(string)
	if got := objs.get(t, "Service", metricsService).GetLabels()[jobLabel]; got != "marketplace-operator" {
		t.Errorf("metrics Service label %s = %q, want marketplace-operator (the alerts' job)", jobLabel, got)
	}
	want := readObject(t, "config/prometheus/rules.yaml")
	expectEqual(t, "PrometheusRule "+rule+" and config/prometheus/rules.yaml", objs.get(t, "PrometheusRule", rule).Object["spec"], want.Object["spec"])
	groups := field(t, want.Object, "spec", "groups", 0, "rules").([]any)
	var alerts []string
	for _, r := range groups {
		alerts = append(alerts, r.(map[string]any)["alert"].(string))
	}
	sort.Strings(alerts)
	for _, a := range []string{"MarketplaceCallbacksFailing", "MarketplaceInstancesNotReady", "MarketplaceSignatureRejectionsSpiking",
		"MarketplaceOrdersUnresolved", "MarketplaceUnresolvedLimitReached"} {
		if i := sort.SearchStrings(alerts, a); i == len(alerts) || alerts[i] != a {
			t.Errorf("alert %s missing from config/prometheus/rules.yaml: %v", a, alerts)
		}
	}
}

// expectNamespaced checks every namespaced object lands in the install namespace.
func expectNamespaced(t *testing.T, objs objects) {
	t.Helper()
	clusterScoped := map[string]bool{"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true}
	for _, o := range objs {
		if !clusterScoped[o.GetKind()] && o.GetNamespace() != namespace {
			t.Errorf("%s %s is in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), namespace)
		}
	}
}
