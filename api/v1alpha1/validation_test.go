package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// readObjects decodes every YAML document of a file into unstructured objects.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if err.Error() == "EOF" {
				return objs
			}
			t.Fatalf("decoding %s: %v", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func TestSamplesAreAccepted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "saas_*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("expected at least 3 samples, got %v (%v)", files, err)
	}
	ctx := context.Background()
	for _, file := range files {
		for _, obj := range readObjects(t, file) {
			t.Run(filepath.Base(file)+"/"+obj.GetName(), func(t *testing.T) {
				// A server-side dry run proves acceptance without leaving objects that other
				// tests would see.
				if err := env.Client.Create(ctx, obj, client.DryRunAll); err != nil {
					t.Fatalf("sample rejected: %v", err)
				}
			})
		}
	}
}

// validInstance is a minimal valid MarketplaceInstance; cases mutate a copy.
func validInstance() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "cs1-000001"},
		"spec": map[string]any{
			"instanceId": "87b94795-0603-4e24-8ae5-69420d60e3c8",
			"order":      map[string]any{"orderId": "CS1", "orderLineId": "CS1-000001"},
		},
	}}
	u.SetGroupVersionKind(testenv.InstanceGVK)
	return u
}

// validPlan is a minimal valid MarketplacePlan; cases mutate a copy.
func validPlan() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "small"},
		"spec": map[string]any{
			"skus":      []any{map[string]any{"productId": "P1", "skuCode": "S1"}},
			"manifests": []any{map[string]any{"name": "cm", "template": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}},
			"appInfo":   map[string]any{"frontEndUrl": "https://{{ .Name }}.example.com"},
		},
	}}
	u.SetGroupVersionKind(testenv.PlanGVK)
	return u
}

func set(u *unstructured.Unstructured, value any, path ...string) *unstructured.Unstructured {
	if err := unstructured.SetNestedField(u.Object, value, path...); err != nil {
		panic(err)
	}
	return u
}

func del(u *unstructured.Unstructured, path ...string) *unstructured.Unstructured {
	unstructured.RemoveNestedField(u.Object, path...)
	return u
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	long := strings.Repeat("x", 65)
	cases := []struct {
		name string
		obj  *unstructured.Unstructured
		want []string // every fragment must appear in the API server's message
	}{
		{"missing instanceId", del(validInstance(), "spec", "instanceId"),
			[]string{"spec.instanceId", "Required value"}},
		{"missing order", del(validInstance(), "spec", "order"),
			[]string{"spec.order", "Required value"}},
		{"missing orderLineId", del(validInstance(), "spec", "order", "orderLineId"),
			[]string{"spec.order.orderLineId", "Required value"}},
		{"too-long orderId", set(validInstance(), long, "spec", "order", "orderId"),
			[]string{"spec.order.orderId", "Too long", "64"}},
		{"too-long instanceId", set(validInstance(), long, "spec", "instanceId"),
			[]string{"spec.instanceId", "Too long"}},
		{"comma in instanceId", set(validInstance(), "a,b", "spec", "instanceId"),
			[]string{"spec.instanceId", "should match"}},
		{"bad state enum", set(validInstance(), "Paused", "spec", "state"),
			[]string{"spec.state", "Unsupported value", "Active", "Frozen"}},
		{"malformed expireTime", set(validInstance(), "next tuesday", "spec", "expireTime"),
			[]string{"spec.expireTime", "date-time"}},
		{"bad plan name format", set(validInstance(), "Demo_Basic", "spec", "plan"),
			[]string{"spec.plan", "should match"}},
		{"too-long plan name", set(validInstance(), strings.Repeat("p", 64), "spec", "plan"),
			[]string{"spec.plan", "Too long"}},
		{"bad retention period", set(validInstance(), "3 days", "spec", "release", "retentionPeriod"),
			[]string{"spec.release.retentionPeriod", "should match"}},
		{"currentOrder equal to order", set(validInstance(), map[string]any{"orderId": "CS1", "orderLineId": "CS1-000001"}, "spec", "currentOrder"),
			[]string{"spec", "currentOrder must name a later order"}},
		{"instance name too long for a namespace", set(validInstance(), strings.Repeat("n", 64), "metadata", "name"),
			[]string{"metadata.name must be a DNS label"}},
		{"plan without skus", del(validPlan(), "spec", "skus"),
			[]string{"spec.skus", "Required value"}},
		{"plan with empty skus", set(validPlan(), []any{}, "spec", "skus"),
			[]string{"spec.skus", "at least 1"}},
		{"plan sku code too long", set(validPlan(), []any{map[string]any{"productId": "P1", "skuCode": long}}, "spec", "skus"),
			[]string{"spec.skus[0].skuCode", "Too long"}},
		{"plan duplicate manifest names", set(validPlan(), []any{
			map[string]any{"name": "a", "template": "x"}, map[string]any{"name": "a", "template": "y"}}, "spec", "manifests"),
			[]string{"spec.manifests[1]", "Duplicate value"}},
		{"plan value key not an identifier", set(validPlan(), map[string]any{"max-users": "5"}, "spec", "values"),
			[]string{"spec", "values keys must be identifiers"}},
		{"plan frontEndUrl too long", set(validPlan(), strings.Repeat("u", 513), "spec", "appInfo", "frontEndUrl"),
			[]string{"spec.appInfo.frontEndUrl", "Too long", "512"}},
		{"plan name not a DNS label", set(validPlan(), "demo.basic", "metadata", "name"),
			[]string{"metadata.name must be a DNS label"}},
		{"plan without appInfo", del(validPlan(), "spec", "appInfo"),
			[]string{"spec.appInfo", "Required value"}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(ctx, tc.obj, client.DryRunAll)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, frag := range tc.want {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("message %q does not contain %q", err.Error(), frag)
				}
			}
		})
	}
}

func TestImmutableFields(t *testing.T) {
	ctx := context.Background()
	obj := validInstance()
	obj.SetName("immutable-1")
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, obj) })

	cases := []struct {
		name  string
		path  []string
		value any
		want  string
	}{
		{"instanceId", []string{"spec", "instanceId"}, "another-id", "instanceId is immutable"},
		{"order", []string{"spec", "order", "orderId"}, "CS2", "order is immutable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changed := obj.DeepCopy()
			set(changed, tc.value, tc.path...)
			err := env.Client.Update(ctx, changed)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want Invalid %q, got %v", tc.want, err)
			}
		})
	}

	t.Run("mutable fields still change", func(t *testing.T) {
		changed := obj.DeepCopy()
		set(changed, "Frozen", "spec", "state")
		set(changed, map[string]any{"orderId": "CS9", "orderLineId": "CS9-000001"}, "spec", "currentOrder")
		if err := env.Client.Update(ctx, changed); err != nil {
			t.Fatalf("update of state and currentOrder refused: %v", err)
		}
	})
}

func TestDefaults(t *testing.T) {
	ctx := context.Background()
	obj := validInstance()
	if err := env.Client.Create(ctx, obj, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if state, _, _ := unstructured.NestedString(obj.Object, "spec", "state"); state != "Active" {
		t.Errorf("spec.state defaulted to %q, want Active", state)
	}
	plan := validPlan()
	if err := env.Client.Create(ctx, plan, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if user, _, _ := unstructured.NestedString(plan.Object, "spec", "appInfo", "adminUserName"); user != "admin" {
		t.Errorf("spec.appInfo.adminUserName defaulted to %q, want admin", user)
	}
}

// TestExplain proves the field docs reach `kubectl explain`, the SRE's first stop.
func TestExplain(t *testing.T) {
	kubectl, kubeconfig, err := env.Kubectl(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"marketplaceinstance.spec": {"instanceId", "businessId). It cannot change.", "currentOrder", "paused",
			"<string> -required-", "Active", "Frozen"},
		"mpi.status.conditions":                   {"Ready summarises"},
		"marketplaceplan.spec.manifests.template": {"Go text/template", ".Values"},
	}
	for field, wants := range cases {
		out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "explain", field).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl explain %s: %v\n%s", field, err, out)
		}
		for _, w := range wants {
			if !strings.Contains(string(out), w) {
				t.Errorf("kubectl explain %s lacks %q:\n%s", field, w, out)
			}
		}
	}
}
