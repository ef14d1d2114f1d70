// Package packaging checks the Helm chart, charts/marketplace-operator: that it lints and
// renders for the value sets users install with, that it ships the same CRDs and RBAC rules as
// config/ (hack/helm-sync.sh copies them), and that it never leaks the keys it is given.
//
// It runs helm from $KUBEBUILDER_ASSETS (`make test` sets it to what hack/control-plane.sh
// prints). helm template output can hold the keys Secret, so it is never logged.
package packaging

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartRepoRoot  = "../.."
	chartPath      = "charts/marketplace-operator"
	chartRelease   = "mpo"
	chartNamespace = "marketplace-operator-system"
	chartFullname  = "mpo-marketplace-operator"
	// kubeVersion is the chart's minimum (Chart.yaml kubeVersion): it must render there.
	chartKubeVersion = "1.30.0"
	chartKeysDir     = "/etc/marketplace/keys"
)

// Values of the keys Secret. They must come back in the Secret and nowhere else.
var chartTestKeys = map[string]string{
	"basic": "pkg-test-basic-key-7d1c", "kit": "pkg-test-kit-key-90ab",
	"ak": "PKGTESTAK4F2E", "sk": "pkg-test-sk-c0ffee", "basicPrevious": "pkg-test-basic-old-55aa",
}

var (
	chartExistingSecret = []string{"keys.existingSecret=mpo-keys"}
	chartCreateKeys     = []string{"keys.create=true", "keys.basic=" + chartTestKeys["basic"], "keys.kit=" + chartTestKeys["kit"],
		"keys.ak=" + chartTestKeys["ak"], "keys.sk=" + chartTestKeys["sk"]}
)

func chartHelmBin(t *testing.T) string {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is unset: run `make test`, or export KUBEBUILDER_ASSETS=\"$(hack/control-plane.sh)\" (the folder with helm)")
	}
	bin := filepath.Join(assets, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no helm in KUBEBUILDER_ASSETS (%v): run `make control-plane`", err)
	}
	return bin
}

// helm runs helm in the repository root and returns stdout and stderr. Neither is logged here.
func chartHelm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(chartHelmBin(t), args...)
	cmd.Dir = chartRepoRoot
	// Keep helm away from the user's repositories, plugins and cache.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func chartSetArgs(sets []string) []string {
	var args []string
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// scrub replaces every test key in s, so that an error message can be logged safely.
func chartScrub(s string) string {
	for _, v := range chartTestKeys {
		s = strings.ReplaceAll(s, v, "<redacted>")
	}
	return s
}

func chartLint(t *testing.T, sets ...string) {
	t.Helper()
	out, errOut, err := chartHelm(t, append([]string{"lint", chartPath, "--strict", "--kube-version", chartKubeVersion}, chartSetArgs(sets)...)...)
	if err != nil {
		t.Fatalf("helm lint %v: %v\n%s%s", sets, err, chartScrub(out), chartScrub(errOut))
	}
}

// manifests renders the chart and returns its objects by "Kind/name".
func chartRender(t *testing.T, sets ...string) map[string][]byte {
	t.Helper()
	out, errOut, err := chartHelm(t, append([]string{"template", chartRelease, chartPath, "--namespace", chartNamespace,
		"--kube-version", chartKubeVersion}, chartSetArgs(sets)...)...)
	if err != nil {
		// stderr holds helm's error only; stdout (the manifests, with any keys) is never shown.
		t.Fatalf("helm template %v: %v\n%s", sets, err, chartScrub(errOut))
	}
	objs := map[string][]byte{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("helm template %v rendered a document that is not YAML: %v", sets, chartScrub(err.Error()))
		}
		if meta.Kind == "" {
			continue // comments only
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if _, dup := objs[key]; dup {
			t.Fatalf("helm template %v rendered %s twice", sets, key)
		}
		objs[key] = []byte(doc)
	}
	return objs
}

// templateError renders a chart that must fail and returns helm's error message.
func chartRenderError(t *testing.T, sets ...string) string {
	t.Helper()
	_, errOut, err := chartHelm(t, append([]string{"template", chartRelease, chartPath, "--namespace", chartNamespace,
		"--kube-version", chartKubeVersion}, chartSetArgs(sets)...)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("helm template %v: want a failure, got err=%v", sets, err)
	}
	return errOut
}

func chartDecode[T any](t *testing.T, objs map[string][]byte, key string) *T {
	t.Helper()
	doc, ok := objs[key]
	if !ok {
		t.Fatalf("%s is not rendered; rendered: %v", key, chartObjectKeys(objs))
	}
	var obj T
	if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
		t.Fatalf("%s: %v", key, chartScrub(err.Error()))
	}
	return &obj
}

func chartObjectKeys(objs map[string][]byte) []string {
	var ks []string
	for k := range objs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func chartKinds(objs map[string][]byte, kind string) []string {
	var names []string
	for _, k := range chartObjectKeys(objs) {
		if name, ok := strings.CutPrefix(k, kind+"/"); ok {
			names = append(names, name)
		}
	}
	return names
}

func TestHelmLint(t *testing.T) {
	t.Parallel()
	for name, sets := range map[string][]string{"existingSecret": chartExistingSecret, "create": chartCreateKeys} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			chartLint(t, sets...)
		})
	}
}

func TestHelmDefaults(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, chartExistingSecret...)

	if s := chartKinds(objs, "Secret"); len(s) != 0 {
		t.Errorf("with keys.existingSecret the chart must create no Secret, rendered %v", s)
	}
	chartDecode[corev1.ServiceAccount](t, objs, "ServiceAccount/"+chartFullname)

	d := chartDecode[appsv1.Deployment](t, objs, "Deployment/"+chartFullname)
	spec := d.Spec.Template.Spec
	if got := *d.Spec.Replicas; got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	if spec.ServiceAccountName != chartFullname {
		t.Errorf("serviceAccountName = %q, want %q", spec.ServiceAccountName, chartFullname)
	}
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds != 40 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 40", spec.TerminationGracePeriodSeconds)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("affinity = %+v, want preferred pod anti-affinity by hostname", a)
	} else if sel := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector; sel == nil ||
		!reflect.DeepEqual(sel.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("anti-affinity selector = %+v, want the Deployment's selector %v", sel, d.Spec.Selector.MatchLabels)
	}

	if len(spec.Containers) != 1 || spec.Containers[0].Name != "manager" {
		t.Fatalf("containers: want one named manager, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	if want := "marketplace-operator:" + chartVersion(t); c.Image != want {
		t.Errorf("image = %q, want %q (the repository, tagged with VERSION)", c.Image, want)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Errorf("container securityContext = %+v, want read-only root, no privilege escalation, drop ALL, runAsUser 65532", sc)
	}
	for _, want := range []string{"--leader-elect", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081",
		"--marketplace-bind-address=:8090", "--marketplace-path=/saasproduce", "--marketplace-keys-dir=" + chartKeysDir,
		"--koogallery-api-url=https://mkt.myhuaweicloud.com", "--freeze-grace=1h", "--zap-log-level=info"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %q", c.Args, want)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := map[string]int32{"marketplace": 8090, "https": 8443, "probes": 8081}; !reflect.DeepEqual(ports, want) {
		t.Errorf("ports = %v, want %v", ports, want)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != "probes" {
			t.Errorf("probe %s = %+v, want an HTTP GET on the probes port", name, p)
		}
	}
	if c.Resources.Requests.Cpu().String() != "100m" || c.Resources.Limits.Memory().String() != "512Mi" {
		t.Errorf("resources = %v, want requests 100m/128Mi, limits 500m/512Mi", c.Resources)
	}

	// The keys: the existing Secret, read-only at keysDir, 0400.
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != chartKeysDir || !c.VolumeMounts[0].ReadOnly {
		t.Fatalf("volumeMounts = %+v, want the keys read-only at %s", c.VolumeMounts, chartKeysDir)
	}
	var keysVol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == c.VolumeMounts[0].Name {
			keysVol = &spec.Volumes[i]
		}
	}
	if keysVol == nil || keysVol.Secret == nil || keysVol.Secret.SecretName != "mpo-keys" ||
		keysVol.Secret.DefaultMode == nil || *keysVol.Secret.DefaultMode != 0o400 {
		t.Errorf("keys volume = %s, want Secret mpo-keys with defaultMode 0400", describeSecretVolume(keysVol))
	}

	// RBAC: the manager's ClusterRole is config/rbac/role.yaml's rules, bound to the ServiceAccount.
	var generated rbacv1.ClusterRole
	raw, err := os.ReadFile(filepath.Join(chartRepoRoot, "config/rbac/role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &generated); err != nil {
		t.Fatalf("config/rbac/role.yaml: %v", err)
	}
	manager := chartDecode[rbacv1.ClusterRole](t, objs, "ClusterRole/"+chartFullname+"-manager")
	if len(generated.Rules) == 0 || !reflect.DeepEqual(manager.Rules, generated.Rules) {
		t.Errorf("the chart's manager ClusterRole rules differ from config/rbac/role.yaml: run make helm-sync")
	}
	crb := chartDecode[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding/"+chartFullname+"-manager")
	if crb.RoleRef.Name != manager.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Kind != "ServiceAccount" ||
		crb.Subjects[0].Name != chartFullname || crb.Subjects[0].Namespace != chartNamespace {
		t.Errorf("ClusterRoleBinding = %+v, want %s bound to ServiceAccount %s/%s", crb, manager.Name, chartNamespace, chartFullname)
	}
	le := chartDecode[rbacv1.Role](t, objs, "Role/"+chartFullname+"-leader-election")
	if le.Namespace != chartNamespace || len(le.Rules) != 2 || !slices.Contains(le.Rules[0].Resources, "leases") {
		t.Errorf("leader election Role = %+v, want leases and events in %s", le, chartNamespace)
	}
	chartDecode[rbacv1.RoleBinding](t, objs, "RoleBinding/"+chartFullname+"-leader-election")
	reader := chartDecode[rbacv1.ClusterRole](t, objs, "ClusterRole/"+chartFullname+"-metrics-reader")
	if len(reader.Rules) != 1 || !slices.Equal(reader.Rules[0].NonResourceURLs, []string{"/metrics"}) ||
		!slices.Equal(reader.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("metrics-reader rules = %+v, want get /metrics", reader.Rules)
	}
	if got := chartKinds(objs, "ClusterRole"); len(got) != 2 {
		t.Errorf("ClusterRoles = %v, want only the manager's and metrics-reader (role.yaml already has the metrics auth rules)", got)
	}

	svc := chartDecode[corev1.Service](t, objs, "Service/"+chartFullname+"-marketplace")
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 ||
		svc.Spec.Ports[0].TargetPort.String() != "marketplace" {
		t.Errorf("marketplace Service = %+v, want ClusterIP 80 -> marketplace", svc.Spec)
	}
	metrics := chartDecode[corev1.Service](t, objs, "Service/"+chartFullname+"-metrics")
	if len(metrics.Spec.Ports) != 1 || metrics.Spec.Ports[0].Port != 8443 || metrics.Spec.Ports[0].Name != "https" {
		t.Errorf("metrics Service ports = %+v, want https 8443", metrics.Spec.Ports)
	}
	np := chartDecode[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy/"+chartFullname)
	if len(np.Spec.Ingress) != 2 || len(np.Spec.Ingress[0].From) != 0 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8090 ||
		np.Spec.Ingress[1].Ports[0].Port.IntValue() != 8443 || len(np.Spec.Ingress[1].From) != 1 ||
		np.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels["metrics"] != "enabled" ||
		slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy = %+v, want 8090 from anywhere, 8443 from namespaces labelled metrics=enabled, egress open", np.Spec)
	}
	for _, kind := range []string{"Ingress", "ServiceMonitor", "PrometheusRule"} {
		if got := chartKinds(objs, kind); len(got) != 0 {
			t.Errorf("defaults render %s %v; it is off by default", kind, got)
		}
	}
}

func TestHelmCreatedKeysSecret(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, append(chartCreateKeys, "keys.basicPrevious="+chartTestKeys["basicPrevious"])...)
	s := chartDecode[corev1.Secret](t, objs, "Secret/"+chartFullname+"-keys")
	want := map[string]string{"basic": chartTestKeys["basic"], "kit": chartTestKeys["kit"], "ak": chartTestKeys["ak"], "sk": chartTestKeys["sk"],
		"basic.previous": chartTestKeys["basicPrevious"]}
	if len(s.Data) != len(want) {
		t.Errorf("Secret files = %v, want %v", slices.Sorted(func(yield func(string) bool) {
			for k := range s.Data {
				if !yield(k) {
					return
				}
			}
		}), []string{"ak", "basic", "basic.previous", "kit", "sk"})
	}
	for file, value := range want {
		if string(s.Data[file]) != value { // never print the values
			t.Errorf("Secret file %q does not hold the value given for it", file)
		}
	}
	d := chartDecode[appsv1.Deployment](t, objs, "Deployment/"+chartFullname)
	if v := d.Spec.Template.Spec.Volumes; len(v) != 1 || v[0].Secret == nil || v[0].Secret.SecretName != s.Name {
		t.Errorf("the Deployment does not mount the created Secret %s", s.Name)
	}
	// The keys appear in the Secret only, base64-encoded: not in args, annotations or elsewhere.
	for key, doc := range objs {
		if key == "Secret/"+s.Name {
			continue
		}
		for name, v := range chartTestKeys {
			if bytes.Contains(doc, []byte(v)) || bytes.Contains(doc, []byte(base64.StdEncoding.EncodeToString([]byte(v)))) {
				t.Errorf("%s contains keys.%s", key, name)
			}
		}
	}
}

func TestHelmIngressWithTLS(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, append(chartExistingSecret, "marketplace.ingress.enabled=true", "marketplace.ingress.className=nginx",
		"marketplace.ingress.hosts[0].host=marketplace.example.com",
		"marketplace.ingress.tls[0].secretName=marketplace-tls", "marketplace.ingress.tls[0].hosts[0]=marketplace.example.com")...)
	ing := chartDecode[networkingv1.Ingress](t, objs, "Ingress/"+chartFullname+"-marketplace")
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName = %v, want nginx", ing.Spec.IngressClassName)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "marketplace-tls" ||
		!slices.Equal(ing.Spec.TLS[0].Hosts, []string{"marketplace.example.com"}) {
		t.Errorf("tls = %+v, want marketplace-tls for marketplace.example.com", ing.Spec.TLS)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "marketplace.example.com" || ing.Spec.Rules[0].HTTP == nil {
		t.Fatalf("rules = %+v, want one for marketplace.example.com", ing.Spec.Rules)
	}
	var paths []string
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		paths = append(paths, p.Path)
		if p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix || p.Backend.Service == nil ||
			p.Backend.Service.Name != chartFullname+"-marketplace" || p.Backend.Service.Port.Name != "http" {
			t.Errorf("path %s = %+v, want Prefix to the marketplace Service's http port", p.Path, p)
		}
	}
	if !slices.Equal(paths, []string{"/saasproduce", "/produceAPI/v2"}) {
		t.Errorf("paths = %v, want the production path and /produceAPI/v2", paths)
	}
}

func TestHelmMonitoring(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, append(chartExistingSecret, "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true")...)
	var sm struct {
		Spec struct {
			Endpoints []struct{ Port, Scheme string }
			Selector  struct{ MatchLabels map[string]string }
		}
	}
	if err := yaml.Unmarshal(objs["ServiceMonitor/"+chartFullname], &sm); err != nil || len(sm.Spec.Endpoints) != 1 ||
		sm.Spec.Endpoints[0].Port != "https" || sm.Spec.Endpoints[0].Scheme != "https" {
		t.Errorf("ServiceMonitor = %+v (%v), want one https endpoint on port https", sm, err)
	}
	metrics := chartDecode[corev1.Service](t, objs, "Service/"+chartFullname+"-metrics")
	for k, v := range sm.Spec.Selector.MatchLabels {
		if metrics.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service lacks", k, v)
		}
	}
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert, Expr string
					Annotations map[string]string
				}
			}
		}
	}
	if err := yaml.Unmarshal(objs["PrometheusRule/"+chartFullname], &rule); err != nil || len(rule.Spec.Groups) != 1 {
		t.Fatalf("PrometheusRule: %v, want one group", err)
	}
	exprs := map[string]string{}
	for _, r := range rule.Spec.Groups[0].Rules {
		exprs[r.Alert] = r.Expr
		if r.Alert == "MarketplaceInstancesNotReady" && !strings.Contains(r.Annotations["description"], "proxy") {
			t.Errorf("MarketplaceInstancesNotReady must say that it uses reconcile errors as a proxy")
		}
	}
	for alert, metric := range map[string]string{
		"MarketplaceCallbacksFailing":           `marketplace_callbacks_total{code!~"000000|000001|000004"}`,
		"MarketplaceInstancesNotReady":          `controller_runtime_reconcile_errors_total{controller="marketplaceinstance"}`,
		"MarketplaceSignatureRejectionsSpiking": "marketplace_signature_rejections_total",
		"MarketplaceOrdersUnresolved":           "marketplace_unresolved_instance_oldest_seconds",
		"MarketplaceUnresolvedLimitReached":     "marketplace_unresolved_limit_refusals_total",
	} {
		if !strings.Contains(exprs[alert], metric) {
			t.Errorf("alert %s: expr %q does not use %s", alert, exprs[alert], metric)
		}
	}
}

func TestHelmSwitchesOff(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, append(chartExistingSecret, "networkPolicy.enabled=false")...)
	if np := chartKinds(objs, "NetworkPolicy"); len(np) != 0 {
		t.Errorf("networkPolicy.enabled=false still renders %v", np)
	}
	objs = chartRender(t, append(chartExistingSecret, "metrics.enabled=false", "leaderElection.enabled=false", "replicaCount=1")...)
	c := chartDecode[appsv1.Deployment](t, objs, "Deployment/"+chartFullname).Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--metrics-bind-address=0") || slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("args %q: want --metrics-bind-address=0 and no --leader-elect", c.Args)
	}
	for _, key := range []string{"Service/" + chartFullname + "-metrics", "ClusterRole/" + chartFullname + "-metrics-reader",
		"Role/" + chartFullname + "-leader-election", "PodDisruptionBudget/" + chartFullname} {
		if _, ok := objs[key]; ok {
			t.Errorf("%s rendered with metrics, leader election and extra replicas off", key)
		}
	}
}

func TestHelmKeysErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		sets []string
		want string
	}{
		"neither":       {nil, "set keys.existingSecret"},
		"both":          {append(chartCreateKeys, chartExistingSecret...), "not both"},
		"missing basic": {[]string{"keys.create=true", "keys.kit=" + chartTestKeys["kit"], "keys.ak=" + chartTestKeys["ak"], "keys.sk=" + chartTestKeys["sk"]}, "keys.create=true needs keys.basic"},
		"missing kit":   {[]string{"keys.create=true", "keys.basic=" + chartTestKeys["basic"], "keys.ak=" + chartTestKeys["ak"], "keys.sk=" + chartTestKeys["sk"]}, "keys.create=true needs keys.kit"},
		"missing ak":    {[]string{"keys.create=true", "keys.basic=" + chartTestKeys["basic"], "keys.kit=" + chartTestKeys["kit"], "keys.sk=" + chartTestKeys["sk"]}, "keys.create=true needs keys.ak"},
		"missing sk":    {[]string{"keys.create=true", "keys.basic=" + chartTestKeys["basic"], "keys.kit=" + chartTestKeys["kit"], "keys.ak=" + chartTestKeys["ak"]}, "keys.create=true needs keys.sk"},
		"unknown value": {append(chartExistingSecret, "replicas=3"), "additional properties 'replicas' not allowed"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg := chartRenderError(t, tc.sets...)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", chartScrub(msg), tc.want)
			}
			if chartScrub(msg) != msg {
				t.Errorf("the error message contains a key value")
			}
		})
	}
}

// files/crds is config/crd/bases, byte for byte, and nothing else; and the chart has no crds/
// folder, whose CRDs Helm installs once and never upgrades.
func TestHelmCRDsInSync(t *testing.T) {
	t.Parallel()
	src, dst := filepath.Join(chartRepoRoot, "config/crd/bases"), filepath.Join(chartRepoRoot, chartPath, "files/crds")
	list := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	want, got := list(src), list(dst)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("%s holds %v, want %v: run make helm-sync", dst, got, want)
	}
	for _, name := range want {
		a, errA := os.ReadFile(filepath.Join(src, name))
		b, errB := os.ReadFile(filepath.Join(dst, name))
		if errA != nil || errB != nil {
			t.Fatal(errors.Join(errA, errB))
		}
		if !bytes.Equal(a, b) {
			t.Errorf("files/crds/%s differs from config/crd/bases/%s: run make helm-sync", name, name)
		}
	}
	if _, err := os.Stat(filepath.Join(chartRepoRoot, chartPath, "crds")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the chart has a crds/ folder (%v): helm upgrade never updates those CRDs; run make helm-sync", err)
	}
}

// The synced ClusterRole template says where it comes from.
func TestHelmClusterRoleHeader(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(chartRepoRoot, chartPath, "templates/clusterrole-manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "# generated by hack/helm-sync.sh from config/rbac/role.yaml; do not edit") {
		t.Errorf("templates/clusterrole-manager.yaml lacks its generated-file header")
	}
}

// chartVersion is the release version, VERSION, which the chart's appVersion and so the default
// image tag must be.
func chartVersion(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartRepoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

func describeSecretVolume(v *corev1.Volume) string {
	switch {
	case v == nil:
		return "missing"
	case v.Secret == nil:
		return "not a Secret volume"
	case v.Secret.DefaultMode == nil:
		return fmt.Sprintf("Secret %s, no defaultMode", v.Secret.SecretName)
	}
	return fmt.Sprintf("Secret %s, defaultMode %#o", v.Secret.SecretName, *v.Secret.DefaultMode)
}
