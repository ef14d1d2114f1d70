package render_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// objectLabels are the labels Workload puts on an object of template on plan.
func objectLabels(plan, template string) map[string]string {
	l := maps.Clone(commonLabels)
	l["saas.marketplace.dev/plan"] = plan
	l["saas.marketplace.dev/template"] = template
	return l
}

func nested(t *testing.T, obj *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, found, err := unstructured.NestedFieldNoCopy(obj.Object, path...)
	if err != nil || !found {
		t.Fatalf("%s %s: %s not found (%v)", obj.GetKind(), obj.GetName(), strings.Join(path, "."), err)
	}
	return v
}

func TestWorkloadSamples(t *testing.T) {
	cases := []struct {
		name     string
		plan     *v1alpha1.MarketplacePlan
		sku      string
		replicas int64
	}{
		{"basic", basicPlan(t), "demo-basic-monthly", 1},
		{"pro", proPlan(t), "demo-pro-yearly", 3},
	}
	wantObjects := []struct{ apiVersion, kind, name, template string }{
		{"apps/v1", "Deployment", "web", "web"},
		{"v1", "Service", "web", "web-service"},
		{"networking.k8s.io/v1", "Ingress", "web", "web-ingress"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render.Workload(sampleInstance(t, tc.sku), tc.plan, render.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != len(wantObjects) {
				t.Fatalf("got %d objects, want %d", len(objs), len(wantObjects))
			}
			for i, want := range wantObjects {
				obj := objs[i]
				if obj.GetAPIVersion() != want.apiVersion || obj.GetKind() != want.kind || obj.GetName() != want.name {
					t.Errorf("object %d is %s %s %s, want %s %s %s", i, obj.GetAPIVersion(), obj.GetKind(), obj.GetName(), want.apiVersion, want.kind, want.name)
				}
				if obj.GetNamespace() != sampleNamespace {
					t.Errorf("%s namespace %q", obj.GetKind(), obj.GetNamespace())
				}
				if got, wantLabels := obj.GetLabels(), objectLabels(tc.plan.Name, want.template); !maps.Equal(got, wantLabels) {
					t.Errorf("%s labels %v, want %v", obj.GetKind(), got, wantLabels)
				}
			}
			deploy := objs[0]
			// Integers stay int64, which NestedInt64 (used to freeze) needs.
			if got := nested(t, deploy, "spec", "replicas"); got != tc.replicas {
				t.Errorf("replicas %#v, want int64 %d", got, tc.replicas)
			}
			// Pod template and selector are left exactly as written.
			if got := nested(t, deploy, "spec", "template", "metadata", "labels"); !maps.Equal(got.(map[string]any), map[string]any{"app": "web"}) {
				t.Errorf("pod template labels changed: %v", got)
			}
			if got := nested(t, deploy, "spec", "selector", "matchLabels"); !maps.Equal(got.(map[string]any), map[string]any{"app": "web"}) {
				t.Errorf("selector changed: %v", got)
			}
			containers := nested(t, deploy, "spec", "template", "spec", "containers").([]any)
			env := containers[0].(map[string]any)["env"].([]any)
			ref := env[1].(map[string]any)["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)
			if ref["name"] != "marketplace-credentials" || ref["key"] != "password" {
				t.Errorf("password ref %v", ref)
			}
			rules := nested(t, objs[2], "spec", "rules").([]any)
			if host := rules[0].(map[string]any)["host"]; host != "cs2211181819b4lvs-000001.apps.example.com" {
				t.Errorf("ingress host %v", host)
			}
		})
	}
}

const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  k: v\n"

func TestWorkloadRendering(t *testing.T) {
	cases := []struct {
		name     string
		template string
		check    func(t *testing.T, obj *unstructured.Unstructured)
	}{
		{"JSON template", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}, "data": {"n": "{{ .Name }}"}}`,
			func(t *testing.T, obj *unstructured.Unstructured) {
				if got := nested(t, obj, "data", "n"); got != "t1" {
					t.Errorf("data.n = %v", got)
				}
			}},
		{"leading separator and comment-only documents are ignored", "# header\n---\n" + fmt.Sprintf(configMap, "c") + "---\n# trailer\n",
			func(t *testing.T, obj *unstructured.Unstructured) {
				if obj.GetName() != "c" {
					t.Errorf("name %q", obj.GetName())
				}
			}},
		{"the tenant namespace may be written", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: '{{ .Namespace }}'}\n",
			func(t *testing.T, obj *unstructured.Unstructured) {
				if obj.GetNamespace() != "mpi-t1" {
					t.Errorf("namespace %q", obj.GetNamespace())
				}
			}},
		{"template labels are kept, ours win", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    app: web\n    saas.marketplace.dev/instance: someone-else\n    saas.marketplace.dev/template: other\n    app.kubernetes.io/managed-by: helm\n",
			func(t *testing.T, obj *unstructured.Unstructured) {
				want := map[string]string{
					"app": "web", "saas.marketplace.dev/instance": "t1", "app.kubernetes.io/managed-by": "marketplace-operator",
					"saas.marketplace.dev/plan": "small", "saas.marketplace.dev/template": "m",
				}
				if got := obj.GetLabels(); !maps.Equal(got, want) {
					t.Errorf("labels %v, want %v", got, want)
				}
			}},
		{"quote keeps YAML-special values strings", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  flag: {{ .Values.flag | quote }}\n  multi: {{ .Values.multi | quote }}\n  num: {{ 3 | quote }}\n",
			func(t *testing.T, obj *unstructured.Unstructured) {
				if got := nested(t, obj, "data", "flag"); got != "yes" {
					t.Errorf("flag %#v", got)
				}
				if got := nested(t, obj, "data", "multi"); got != "a\nkind: Secret" {
					t.Errorf("multi %#v", got)
				}
				if got := nested(t, obj, "data", "num"); got != "3" {
					t.Errorf("num %#v", got)
				}
			}},
		{"annotations and other metadata are kept", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {a: b}}\n",
			func(t *testing.T, obj *unstructured.Unstructured) {
				if got := obj.GetAnnotations(); !maps.Equal(got, map[string]string{"a": "b"}) {
					t.Errorf("annotations %v", got)
				}
			}},
		{"a NetworkPolicy with its own name is allowed", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-metrics}\nspec: {podSelector: {}}\n",
			func(t *testing.T, obj *unstructured.Unstructured) {
				if obj.GetName() != "allow-metrics" {
					t.Errorf("name %q", obj.GetName())
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := testPlan("m", tc.template)
			plan.Spec.Values["flag"] = "yes"
			plan.Spec.Values["multi"] = "a\nkind: Secret"
			objs, err := render.Workload(testInstance("t1"), plan, render.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 1 {
				t.Fatalf("got %d objects", len(objs))
			}
			tc.check(t, objs[0])
		})
	}
}

func TestWorkloadKeepsManifestOrder(t *testing.T) {
	names := []string{"zeta", "alpha", "mid", "beta"}
	var manifests []string
	for _, n := range names {
		manifests = append(manifests, n, fmt.Sprintf(configMap, n))
	}
	objs, err := render.Workload(testInstance("t1"), testPlan(manifests...), render.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, obj := range objs {
		got = append(got, obj.GetName())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("order %v, want %v", got, names)
	}
}

func TestWorkloadErrors(t *testing.T) {
	cases := []struct {
		name      string
		manifests []string // name, template pairs
		want      error
		contains  []string
	}{
		{"missing value", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Values.nope }}'}\n"},
			nil, []string{"template web:", `"nope"`}},
		{"unknown variable", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Tenant }}'}\n"},
			nil, []string{"template web:", "Tenant"}},
		{"template syntax", []string{"web", "metadata: {{ .Name "},
			nil, []string{"template web:"}},
		{"two documents", []string{"web", fmt.Sprintf(configMap, "a") + "---\n" + fmt.Sprintf(configMap, "b")},
			render.ErrObjectCount, []string{"template web:", "several"}},
		{"two JSON objects", []string{"web", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`},
			render.ErrObjectCount, []string{"template web:"}},
		{"no object", []string{"web", "{{/* nothing */}}\n# just a comment\n"},
			render.ErrObjectCount, []string{"template web:", "none"}},
		{"a string", []string{"web", "hello"}, render.ErrInvalidObject, []string{"a string"}},
		{"a number", []string{"web", "42"}, render.ErrInvalidObject, []string{"a scalar"}},
		{"a list", []string{"web", "- a\n- b\n"}, render.ErrInvalidObject, []string{"a list"}},
		{"malformed YAML", []string{"web", "apiVersion: v1\nkind: [\n"}, render.ErrInvalidObject, []string{"template web:", "line"}},
		{"malformed JSON", []string{"web", `{"apiVersion": "v1" "kind": "ConfigMap"}`}, render.ErrInvalidObject, []string{"template web:", "malformed JSON at byte"}},
		{"missing apiVersion", []string{"web", "kind: ConfigMap\nmetadata: {name: a}\n"}, render.ErrInvalidObject, []string{"apiVersion"}},
		{"bad apiVersion", []string{"web", "apiVersion: a/b/c\nkind: ConfigMap\nmetadata: {name: a}\n"}, render.ErrInvalidObject, []string{"apiVersion"}},
		{"missing kind", []string{"web", "apiVersion: v1\nmetadata: {name: a}\n"}, render.ErrInvalidObject, []string{"kind"}},
		{"missing name", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n"}, render.ErrInvalidObject, []string{"metadata.name"}},
		{"metadata not a map", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: a\n"}, render.ErrInvalidObject, []string{"metadata.name"}},
		{"labels not strings", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {n: 1}}\n"}, render.ErrInvalidObject, []string{"metadata.labels"}},
		{"a list kind", []string{"web", "apiVersion: v1\nkind: List\nitems: []\n"}, render.ErrForbiddenKind, []string{"List"}},
		{"foreign namespace", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system}\n"},
			render.ErrForeignNamespace, []string{"template web:", "kube-system"}},
		{"another tenant's namespace", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: mpi-other}\n"},
			render.ErrForeignNamespace, []string{"mpi-other"}},
		{"namespace not a string", []string{"web", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: [x]}\n"},
			render.ErrInvalidObject, []string{"metadata.namespace"}},
		{"same object from two manifests", []string{"a", fmt.Sprintf(configMap, "x"), "b", fmt.Sprintf(configMap, "x")},
			render.ErrDuplicate, []string{"template b:", "template a"}},
		{"duplicate manifest name", []string{"a", fmt.Sprintf(configMap, "x"), "a", fmt.Sprintf(configMap, "y")},
			render.ErrDuplicate, []string{"template a:", "manifest name"}},
		{"runaway output", []string{"big", "{{ range 2000000 }}xx{{ end }}"}, render.ErrRenderedTooLarge, []string{"template big:"}},
		{"every failing template is reported", []string{"one", "{{ .Values.a }}", "ok", fmt.Sprintf(configMap, "x"), "two", "{{ .Values.b }}"},
			nil, []string{"template one:", "template two:"}},
	}
	for _, kind := range []string{"Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "StorageClass", "PriorityClass", "APIService"} {
		cases = append(cases, struct {
			name      string
			manifests []string
			want      error
			contains  []string
		}{"forbidden " + kind, []string{"web", "apiVersion: x.example/v1\nkind: " + kind + "\nmetadata: {name: a}\n"},
			render.ErrForbiddenKind, []string{"template web:", kind}})
	}
	for kind, name := range map[string]string{
		"ResourceQuota": "tenant-quota", "LimitRange": "tenant-limits", "NetworkPolicy": "allow-tenant-ingress",
		"Secret": "marketplace-credentials", "Job": "marketplace-backup",
	} {
		cases = append(cases, struct {
			name      string
			manifests []string
			want      error
			contains  []string
		}{"reserved " + kind, []string{"web", "apiVersion: v1\nkind: " + kind + "\nmetadata: {name: " + name + "}\n"},
			render.ErrReservedName, []string{"template web:", name}})
	}
	cases = append(cases, struct {
		name      string
		manifests []string
		want      error
		contains  []string
	}{"reserved deny policy", []string{"web", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny-ingress}\n"},
		render.ErrReservedName, []string{"default-deny-ingress"}})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render.Workload(testInstance("t1"), testPlan(tc.manifests...), render.Policy{})
			if err == nil {
				t.Fatalf("want an error, got %d objects", len(objs))
			}
			if objs != nil {
				t.Errorf("objects returned with an error")
			}
			var te *render.TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("error %q is not a *TemplateError", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %q", err, tc.want)
			}
			checkErr(t, err, err, tc.contains, nil)
			t.Log(err)
		})
	}
}

// A Secret's rendered data must never reach an error: errors end up in conditions and events.
func TestWorkloadErrorsNeverQuoteSecretData(t *testing.T) {
	const secret = "s3cr3tvalue"
	cases := []struct{ name, template string }{
		{"foreign namespace", "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: other}\nstringData: {pw: " + secret + "}\n"},
		{"reserved name", "apiVersion: v1\nkind: Secret\nmetadata: {name: marketplace-credentials}\nstringData: {pw: " + secret + "}\n"},
		{"missing name", "apiVersion: v1\nkind: Secret\nstringData: {pw: " + secret + "}\n"},
		{"bad document separator", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n--- " + secret + "\n"},
		{"malformed YAML after the data", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pw: " + secret + "}\n  broken: [\n"},
		{"malformed JSON", `{"apiVersion": "v1", "kind": "Secret", "stringData": {"pw": "` + secret + `"} "` + secret + `"}`},
		{"two documents", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pw: " + secret + "}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: t}\n"},
		{"labels of the wrong type", "apiVersion: v1\nkind: Secret\nmetadata: {name: s, labels: [" + secret + "]}\n"},
		{"name of the wrong type", "apiVersion: v1\nkind: Secret\nmetadata: {name: [" + secret + "]}\n"},
		{"apiVersion of the wrong type", "apiVersion: {v: " + secret + "}\nkind: Secret\nmetadata: {name: s}\n"},
		{"a scalar", secret},
		{"a list", "- " + secret},
		{"duplicate object", "apiVersion: v1\nkind: Secret\nmetadata: {name: dup}\nstringData: {pw: " + secret + "}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := testPlan("s", tc.template)
			if tc.name == "duplicate object" {
				plan = testPlan("s", tc.template, "s2", tc.template)
			}
			_, err := render.Workload(testInstance("t1"), plan, render.Policy{})
			if err == nil {
				t.Fatal("want an error")
			}
			t.Log(err)
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error quotes secret data: %q", err)
			}
		})
	}
}
