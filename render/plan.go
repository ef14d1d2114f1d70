package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// planHashVersion is hashed with the spec. Bump it when this package renders the same spec
// differently, so every tenant is re-rendered after the operator upgrade.
const planHashVersion = "render/v1"

// planHashLength hex characters (64 bits) are plenty to tell plan revisions apart and short
// enough for a label or annotation value.
const planHashLength = 16

// PlanHash is a short, stable hash of plan.Spec, which the reconciler can record to know when a
// tenant must be re-rendered. JSON encoding sorts map keys, so the hash does not depend on map
// iteration order; list order is kept because it is meaningful (manifests apply in order).
func PlanHash(plan *v1alpha1.MarketplacePlan) string {
	h := sha256.New()
	h.Write([]byte(planHashVersion + "\n"))
	if err := json.NewEncoder(h).Encode(plan.Spec); err != nil {
		// Unreachable for these types; hashing the message still gives a stable answer.
		fmt.Fprintf(h, "unencodable spec: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:planHashLength]
}

// Sample values ValidatePlan renders with. They have the shape of real ones (a full-length
// DNS label name, a UUID instance ID) so templates that depend on the shape are exercised.
const (
	sampleInstanceName = "plan-validation-sample"
	sampleInstanceID   = "00000000-0000-0000-0000-000000000000"
)

// ValidatePlan renders every template of plan (manifests, appInfo, backup) for a sample
// instance and returns every problem found, joined, for a plan controller to report in a
// condition. It catches syntax errors, unknown .Values keys, objects the instance reconciler
// would refuse and invalid URLs; a branch the sample does not take is only parsed.
func ValidatePlan(plan *v1alpha1.MarketplacePlan, policy Policy) error {
	inst := sampleInstance(plan)
	var errs []error
	if len(plan.Spec.Manifests) == 0 {
		errs = append(errs, errors.New("plan has no manifests"))
	}
	if _, err := Workload(inst, plan, policy); err != nil {
		errs = append(errs, err)
	}
	if _, err := AppInfo(inst, plan); err != nil {
		errs = append(errs, err)
	}
	if _, err := BackupJob(inst, plan); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sampleInstance is an instance of plan's first SKU, as if its order had been resolved.
func sampleInstance(plan *v1alpha1.MarketplacePlan) *v1alpha1.MarketplaceInstance {
	inst := &v1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: sampleInstanceName},
		Spec:       v1alpha1.MarketplaceInstanceSpec{InstanceID: sampleInstanceID, Plan: plan.Name},
	}
	if len(plan.Spec.SKUs) > 0 {
		sku := plan.Spec.SKUs[0]
		inst.Status.Order = &v1alpha1.ResolvedOrder{ProductID: sku.ProductID, SKUCode: sku.SKUCode}
	}
	return inst
}
