package testenv_test

import (
	"slices"
	"testing"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

// TestSamplePlans: the constants tests order by are what the sample plans say.
func TestSamplePlans(t *testing.T) {
	for _, tc := range []struct {
		file, name string
		sku        saasv1alpha1.SKU
	}{
		{testenv.BasicPlanFile, testenv.BasicPlan, saasv1alpha1.SKU{ProductID: testenv.BasicProduct, SKUCode: testenv.BasicSKU}},
		{testenv.ProPlanFile, testenv.ProPlan, saasv1alpha1.SKU{ProductID: testenv.ProProduct, SKUCode: testenv.ProSKU}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := testenv.SamplePlan(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Name != tc.name {
				t.Errorf("%s holds plan %q, want %q", tc.file, plan.Name, tc.name)
			}
			if !slices.Contains(plan.Spec.SKUs, tc.sku) {
				t.Errorf("plan %s serves %v, not %v", plan.Name, plan.Spec.SKUs, tc.sku)
			}
		})
	}
}
