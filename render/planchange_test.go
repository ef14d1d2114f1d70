package render_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestPlanForSKU(t *testing.T) {
	plan := func(name string, skus ...v1alpha1.SKU) v1alpha1.MarketplacePlan {
		return v1alpha1.MarketplacePlan{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.MarketplacePlanSpec{SKUs: skus}}
	}
	basic := v1alpha1.SKU{ProductID: "P1", SKUCode: "basic"}
	pro := v1alpha1.SKU{ProductID: "P1", SKUCode: "pro"}
	for _, tc := range []struct {
		name        string
		plans       []v1alpha1.MarketplacePlan
		sku         v1alpha1.SKU
		want        string
		wantServing []string
	}{
		{"one plan serves it", []v1alpha1.MarketplacePlan{plan("b", basic), plan("p", pro)}, pro, "p", nil},
		{"among several SKUs of a plan", []v1alpha1.MarketplacePlan{plan("all", basic, pro)}, pro, "all", nil},
		{"none serves it", []v1alpha1.MarketplacePlan{plan("b", basic)}, pro, "", nil},
		{"no plans", nil, basic, "", nil},
		{"the same code under another product", []v1alpha1.MarketplacePlan{plan("b", basic)}, v1alpha1.SKU{ProductID: "P2", SKUCode: "basic"}, "", nil},
		{"several serve it, names sorted", []v1alpha1.MarketplacePlan{plan("z", basic), plan("p", pro), plan("a", basic)}, basic, "", []string{"a", "z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, serving := render.PlanForSKU(tc.plans, tc.sku.ProductID, tc.sku.SKUCode)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tc.want {
				t.Errorf("plan = %q, want %q", name, tc.want)
			}
			if !slices.Equal(serving, tc.wantServing) {
				t.Errorf("serving = %v, want %v", serving, tc.wantServing)
			}
		})
	}
}

// The reconciler looks plans up by an index of SKUKeys; PlanForSKU then decides among them.
func TestSKUKeys(t *testing.T) {
	plan := &v1alpha1.MarketplacePlan{Spec: v1alpha1.MarketplacePlanSpec{SKUs: []v1alpha1.SKU{
		{ProductID: "P1", SKUCode: "basic"}, {ProductID: "P2", SKUCode: "basic"}}}}
	want := []string{render.SKUKey("P1", "basic"), render.SKUKey("P2", "basic")}
	if got := render.SKUKeys(plan); !slices.Equal(got, want) {
		t.Errorf("SKUKeys = %v, want %v", got, want)
	}
	if render.SKUKey("P1", "basic") == render.SKUKey("P2", "basic") {
		t.Error("two products share a key")
	}
}

func TestQuotaShortfall(t *testing.T) {
	list := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	hard := list("requests.cpu", "2", "requests.memory", "4Gi", "pods", "10")
	for _, tc := range []struct {
		name string
		used corev1.ResourceList
		want []string
	}{
		{"nothing used", nil, nil},
		{"within every limit", list("requests.cpu", "1500m", "requests.memory", "4Gi"), nil},
		{"one over", list("requests.cpu", "3", "pods", "4"), []string{"requests.cpu: used 3, plan allows 2"}},
		{"several over, sorted", list("requests.memory", "5Gi", "requests.cpu", "2100m", "pods", "11"), []string{
			"pods: used 11, plan allows 10",
			"requests.cpu: used 2100m, plan allows 2",
			"requests.memory: used 5Gi, plan allows 4Gi",
		}},
		{"a resource the target does not limit", list("limits.cpu", "100"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := render.QuotaShortfall(tc.used, hard); !slices.Equal(got, tc.want) {
				t.Errorf("QuotaShortfall = %q, want %q", got, tc.want)
			}
		})
	}
}
