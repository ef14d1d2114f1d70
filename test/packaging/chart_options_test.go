package packaging

import (
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
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The CRDs are templates, so helm upgrade updates them: their spec is config/crd/bases's, they
// carry the release's labels (Helm adopts only what is labelled as its own) and, unless told
// otherwise, the keep policy that makes an uninstall leave them and every instance.
func TestHelmCRDs(t *testing.T) {
	t.Parallel()
	want := map[string]apiextensionsv1.CustomResourceDefinitionSpec{}
	dir := filepath.Join(chartRepoRoot, "config/crd/bases")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name())) //nolint:gosec // the repository's CRDs
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		want[crd.Name] = crd.Spec
	}

	objs := chartRender(t, chartExistingSecret...)
	names := chartKinds(objs, "CustomResourceDefinition")
	if len(names) != len(want) || len(names) == 0 {
		t.Fatalf("CRDs rendered: %v, want the %d of config/crd/bases", names, len(want))
	}
	for _, name := range names {
		crd := chartDecode[apiextensionsv1.CustomResourceDefinition](t, objs, "CustomResourceDefinition/"+name)
		if !reflect.DeepEqual(crd.Spec, want[name]) {
			t.Errorf("CRD %s: spec differs from config/crd/bases: run make helm-sync", name)
		}
		if crd.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s annotations %v lack helm.sh/resource-policy=keep", name, crd.Annotations)
		}
		if crd.Annotations["controller-gen.kubebuilder.io/version"] == "" {
			t.Errorf("CRD %s lost its generated annotations: %v", name, crd.Annotations)
		}
		if crd.Labels["app.kubernetes.io/managed-by"] != "Helm" || crd.Labels["app.kubernetes.io/instance"] != chartRelease {
			t.Errorf("CRD %s labels %v: want the release's", name, crd.Labels)
		}
	}

	objs = chartRender(t, append(chartExistingSecret, "crds.keep=false")...)
	for _, name := range chartKinds(objs, "CustomResourceDefinition") {
		crd := chartDecode[apiextensionsv1.CustomResourceDefinition](t, objs, "CustomResourceDefinition/"+name)
		if _, ok := crd.Annotations["helm.sh/resource-policy"]; ok {
			t.Errorf("crds.keep=false: CRD %s still has a resource policy", name)
		}
	}
	if got := chartKinds(chartRender(t, append(chartExistingSecret, "crds.enabled=false")...), "CustomResourceDefinition"); len(got) != 0 {
		t.Errorf("crds.enabled=false renders CRDs %v", got)
	}
}

func TestHelmServiceAccount(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, append(chartExistingSecret, "serviceAccount.annotations.example\\.com/role=operator")...)
	sa := chartDecode[corev1.ServiceAccount](t, objs, "ServiceAccount/"+chartFullname)
	if sa.Annotations["example.com/role"] != "operator" {
		t.Errorf("ServiceAccount annotations = %v, want example.com/role=operator", sa.Annotations)
	}

	objs = chartRender(t, append(chartExistingSecret, "serviceAccount.name=custom")...)
	chartDecode[corev1.ServiceAccount](t, objs, "ServiceAccount/custom")
	expectManagerIdentity(t, objs, "custom")

	objs = chartRender(t, append(chartExistingSecret, "serviceAccount.create=false", "serviceAccount.name=platform-sa")...)
	if got := chartKinds(objs, "ServiceAccount"); len(got) != 0 {
		t.Errorf("serviceAccount.create=false renders ServiceAccounts %v", got)
	}
	expectManagerIdentity(t, objs, "platform-sa")

	if msg := chartRenderError(t, append(chartExistingSecret, "serviceAccount.create=false")...); !strings.Contains(msg, "serviceAccount.create=false needs serviceAccount.name") {
		t.Errorf("serviceAccount.create=false without a name: error %q does not say what is missing", msg)
	}
}

// expectManagerIdentity checks the pod runs as sa and every binding of the chart names it.
func expectManagerIdentity(t *testing.T, objs map[string][]byte, sa string) {
	t.Helper()
	if got := chartDecode[appsv1.Deployment](t, objs, "Deployment/"+chartFullname).Spec.Template.Spec.ServiceAccountName; got != sa {
		t.Errorf("serviceAccountName = %q, want %q", got, sa)
	}
	for _, key := range []string{"ClusterRoleBinding/" + chartFullname + "-manager", "RoleBinding/" + chartFullname + "-leader-election"} {
		var subjects []rbacv1.Subject
		if strings.HasPrefix(key, "ClusterRoleBinding/") {
			subjects = chartDecode[rbacv1.ClusterRoleBinding](t, objs, key).Subjects
		} else {
			subjects = chartDecode[rbacv1.RoleBinding](t, objs, key).Subjects
		}
		if len(subjects) != 1 || subjects[0].Name != sa || subjects[0].Namespace != chartNamespace {
			t.Errorf("%s subjects = %+v, want ServiceAccount %s/%s", key, subjects, chartNamespace, sa)
		}
	}
	if doc := string(objs["ValidatingAdmissionPolicy/"+chartFullname+"-manager-scope"]); !strings.Contains(doc, chartNamespace+":"+sa) {
		t.Errorf("the manager-scope admission policy does not name ServiceAccount %s", sa)
	}
}

func TestHelmPodOptions(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, append(chartExistingSecret,
		"podLabels.team=payments", "podLabels.app\\.kubernetes\\.io/name=overridden",
		"priorityClassName=system-cluster-critical",
		"topologySpreadConstraints[0].maxSkew=1", "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
		"topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
		"topologySpreadConstraints[1].maxSkew=2", "topologySpreadConstraints[1].topologyKey=kubernetes.io/hostname",
		"topologySpreadConstraints[1].whenUnsatisfiable=DoNotSchedule", "topologySpreadConstraints[1].labelSelector.matchLabels.pool=a",
		"extraEnv[0].name=HTTPS_PROXY", "extraEnv[0].value=http://proxy.example:3128",
		"extraVolumes[0].name=ca", "extraVolumes[0].configMap.name=corporate-ca",
		"extraVolumeMounts[0].name=ca", "extraVolumeMounts[0].mountPath=/etc/ssl/corporate", "extraVolumeMounts[0].readOnly=true",
		"livenessProbe.failureThreshold=6", "livenessProbe.timeoutSeconds=3", "readinessProbe.periodSeconds=10")...)
	d := chartDecode[appsv1.Deployment](t, objs, "Deployment/"+chartFullname)
	pod := d.Spec.Template

	if pod.Labels["team"] != "payments" {
		t.Errorf("pod labels %v lack podLabels team=payments", pod.Labels)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("pod label %s=%q, want the selector's %q: podLabels must not override the chart's", k, pod.Labels[k], v)
		}
	}
	if pod.Spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName = %q", pod.Spec.PriorityClassName)
	}
	tsc := pod.Spec.TopologySpreadConstraints
	if len(tsc) != 2 {
		t.Fatalf("topologySpreadConstraints = %+v, want 2", tsc)
	}
	if tsc[0].TopologyKey != "topology.kubernetes.io/zone" || tsc[0].MaxSkew != 1 || tsc[0].WhenUnsatisfiable != corev1.ScheduleAnyway ||
		tsc[0].LabelSelector == nil || !reflect.DeepEqual(tsc[0].LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("topologySpreadConstraints[0] = %+v, want the zone constraint selecting the manager's pods", tsc[0])
	}
	if tsc[1].LabelSelector == nil || !reflect.DeepEqual(tsc[1].LabelSelector.MatchLabels, map[string]string{"pool": "a"}) {
		t.Errorf("topologySpreadConstraints[1].labelSelector = %+v, want the one given", tsc[1].LabelSelector)
	}

	c := pod.Spec.Containers[0]
	if !slices.Equal(c.Env, []corev1.EnvVar{{Name: "HTTPS_PROXY", Value: "http://proxy.example:3128"}}) {
		t.Errorf("env = %+v, want extraEnv", c.Env)
	}
	if len(c.VolumeMounts) != 2 || c.VolumeMounts[0].MountPath != chartKeysDir ||
		!reflect.DeepEqual(c.VolumeMounts[1], corev1.VolumeMount{Name: "ca", MountPath: "/etc/ssl/corporate", ReadOnly: true}) {
		t.Errorf("volumeMounts = %+v, want the keys then extraVolumeMounts", c.VolumeMounts)
	}
	if v := pod.Spec.Volumes; len(v) != 2 || v[1].Name != "ca" || v[1].ConfigMap == nil || v[1].ConfigMap.Name != "corporate-ca" {
		t.Errorf("volumes = %+v, want the keys then extraVolumes", v)
	}
	lp, rp := c.LivenessProbe, c.ReadinessProbe
	if lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" || lp.FailureThreshold != 6 || lp.TimeoutSeconds != 3 ||
		lp.InitialDelaySeconds != 15 || lp.PeriodSeconds != 20 {
		t.Errorf("livenessProbe = %+v, want /healthz with failureThreshold 6, timeoutSeconds 3 and the default delays", lp)
	}
	if rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" || rp.PeriodSeconds != 10 || rp.InitialDelaySeconds != 2 {
		t.Errorf("readinessProbe = %+v, want /readyz every 10 s", rp)
	}

	for _, bad := range [][]string{{"livenessProbe.httpGet.path=/"}, {"readinessProbe.periodSeconds=0"}, {"extraVolumeMounts[0].name=x"}} {
		if msg := chartRenderError(t, append(chartExistingSecret, bad...)...); !strings.Contains(msg, "schema") {
			t.Errorf("%v: error %q, want a schema violation", bad, msg)
		}
	}
}

// The endpoint's own TLS: the Secret mounted, the manager pointed at it, and the Service's and
// Ingress's port named https so that a TLS-speaking ingress controller can tell.
func TestHelmEndpointTLS(t *testing.T) {
	t.Parallel()
	objs := chartRender(t, append(chartExistingSecret, "marketplace.tls.secretName=marketplace-cert", "marketplace.ingress.enabled=true",
		"marketplace.ingress.hosts[0].host=marketplace.example.com")...)
	spec := chartDecode[appsv1.Deployment](t, objs, "Deployment/"+chartFullname).Spec.Template.Spec
	c := spec.Containers[0]
	for _, want := range []string{"--marketplace-tls-cert-file=/etc/marketplace/tls/tls.crt", "--marketplace-tls-key-file=/etc/marketplace/tls/tls.key"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %q", c.Args, want)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return reflect.DeepEqual(m, corev1.VolumeMount{Name: "marketplace-tls", MountPath: "/etc/marketplace/tls", ReadOnly: true})
	}) {
		t.Errorf("volumeMounts %+v lack the TLS Secret at /etc/marketplace/tls", c.VolumeMounts)
	}
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == "marketplace-tls" {
			vol = &spec.Volumes[i]
		}
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "marketplace-cert" {
		t.Errorf("TLS volume = %s, want Secret marketplace-cert", describeSecretVolume(vol))
	}
	svc := chartDecode[corev1.Service](t, objs, "Service/"+chartFullname+"-marketplace")
	if svc.Spec.Ports[0].Name != "https" {
		t.Errorf("marketplace Service port named %q, want https", svc.Spec.Ports[0].Name)
	}
	ing := chartDecode[networkingv1.Ingress](t, objs, "Ingress/"+chartFullname+"-marketplace")
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		if p.Backend.Service.Port.Name != "https" {
			t.Errorf("Ingress path %s goes to port %q, want https", p.Path, p.Backend.Service.Port.Name)
		}
	}
	if hook := string(objs["Pod/"+chartFullname+"-test-endpoint"]); !strings.Contains(hook, "https://"+chartFullname+"-marketplace.") {
		t.Errorf("the helm test pod does not call the endpoint over https")
	}

	objs = chartRender(t, chartExistingSecret...)
	c = chartDecode[appsv1.Deployment](t, objs, "Deployment/"+chartFullname).Spec.Template.Spec.Containers[0]
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--marketplace-tls-") {
			t.Errorf("without marketplace.tls.secretName the manager is given %s", a)
		}
	}
}

// A values file written for an earlier chart (here the whole values.yaml of the last chart with
// crds/, as users copy it) still validates against the strict schema, and the chart's new
// defaults apply to what it does not mention: new values are added, never renamed or removed.
func TestHelmEarlierValuesFile(t *testing.T) {
	t.Parallel()
	out, errOut, err := chartHelm(t, "template", chartRelease, chartPath, "--namespace", chartNamespace, "--kube-version", chartKubeVersion,
		"-f", "test/packaging/testdata/values-8d4d986.yaml")
	if err != nil {
		t.Fatalf("helm template -f testdata/values-8d4d986.yaml: %v\n%s", err, chartScrub(errOut))
	}
	for _, want := range []string{"kind: Deployment", "kind: CustomResourceDefinition", "helm.sh/resource-policy: keep", "helm.sh/hook: test"} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered with the earlier values file, the chart lacks %q", want)
		}
	}
}

// The chart's README is what hack/chart-readme writes from values.yaml, which documents every
// value (the tool refuses one without a "# --" description).
func TestHelmChartReadme(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "run", ".", "-chart", "../../"+chartPath, "-check")
	cmd.Dir = filepath.Join(chartRepoRoot, "hack", "chart-readme")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("hack/chart-readme -check: %v\n%s(run make chart-readme)", err, out)
	}
}
