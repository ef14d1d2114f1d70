package render_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// sampleNamespace is the tenant namespace of config/samples' instance.
const sampleNamespace = "mpi-cs2211181819b4lvs-000001"

// dnsLabel is what a namespace name must be.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// readSample decodes a file of config/samples strictly, so a sample drifting from the API
// types fails here too.
func readSample(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
}

func basicPlan(t *testing.T) *v1alpha1.MarketplacePlan {
	t.Helper()
	plan := &v1alpha1.MarketplacePlan{}
	readSample(t, "saas_v1alpha1_marketplaceplan_basic.yaml", plan)
	return plan
}

func proPlan(t *testing.T) *v1alpha1.MarketplacePlan {
	t.Helper()
	plan := &v1alpha1.MarketplacePlan{}
	readSample(t, "saas_v1alpha1_marketplaceplan_pro.yaml", plan)
	return plan
}

// sampleInstance is config/samples' instance with its order resolved to sku.
func sampleInstance(t *testing.T, sku string) *v1alpha1.MarketplaceInstance {
	t.Helper()
	inst := &v1alpha1.MarketplaceInstance{}
	readSample(t, "saas_v1alpha1_marketplaceinstance.yaml", inst)
	if sku != "" {
		inst.Status.Order = &v1alpha1.ResolvedOrder{OrderID: inst.Spec.Order.OrderID, SKUCode: sku}
	}
	return inst
}

// testInstance is a minimal instance for tests that do not need the sample.
func testInstance(name string) *v1alpha1.MarketplaceInstance {
	return &v1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.MarketplaceInstanceSpec{InstanceID: "id-" + name},
	}
}

// testPlan is a plan with the given manifests (name, template pairs) and a valid appInfo.
func testPlan(manifests ...string) *v1alpha1.MarketplacePlan {
	plan := &v1alpha1.MarketplacePlan{
		ObjectMeta: metav1.ObjectMeta{Name: "small"},
		Spec: v1alpha1.MarketplacePlanSpec{
			SKUs:    []v1alpha1.SKU{{ProductID: "P1", SKUCode: "S1"}},
			Values:  map[string]string{"domain": "example.com", "replicas": "2"},
			AppInfo: v1alpha1.AppInfoTemplates{FrontEndURL: "https://{{ .Name }}.{{ .Values.domain }}/"},
		},
	}
	for i := 0; i+1 < len(manifests); i += 2 {
		plan.Spec.Manifests = append(plan.Spec.Manifests, v1alpha1.ManifestTemplate{Name: manifests[i], Template: manifests[i+1]})
	}
	return plan
}

// checkErr asserts err against a wanted sentinel (nil means success) and fragments that must
// and must not appear in its message.
func checkErr(t *testing.T, err, want error, contains, excludes []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want an error wrapping %q, got none", want)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %q does not wrap %q", err, want)
	}
	for _, frag := range contains {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error %q does not contain %q", err, frag)
		}
	}
	for _, frag := range excludes {
		if strings.Contains(err.Error(), frag) {
			t.Errorf("error %q contains %q", err, frag)
		}
	}
}
