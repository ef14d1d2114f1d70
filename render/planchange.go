package render

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// SKUKey is the key of the KooGallery product specification productID/skuCode, under which
// plans are indexed (SKUKeys).
func SKUKey(productID, skuCode string) string { return productID + "/" + skuCode }

// SKUKeys are the keys (SKUKey) of the SKUs plan serves.
func SKUKeys(plan *v1alpha1.MarketplacePlan) []string {
	keys := make([]string, 0, len(plan.Spec.SKUs))
	for _, s := range plan.Spec.SKUs {
		keys = append(keys, SKUKey(s.ProductID, s.SKUCode))
	}
	return keys
}

// PlanForSKU returns the one plan among plans that serves productID/skuCode. When none does, it
// returns nil and no names; when several do, nil and their names, sorted: a SKU claimed twice is
// a platform mistake, and picking one would depend on list order. plans may be every plan or
// only those an index found for the SKU.
func PlanForSKU(plans []v1alpha1.MarketplacePlan, productID, skuCode string) (*v1alpha1.MarketplacePlan, []string) {
	var match []*v1alpha1.MarketplacePlan
	for i := range plans {
		if slices.Contains(plans[i].Spec.SKUs, v1alpha1.SKU{ProductID: productID, SKUCode: skuCode}) {
			match = append(match, &plans[i])
		}
	}
	if len(match) == 1 {
		return match[0], nil
	}
	var names []string
	for _, p := range match {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return nil, names
}

// QuotaShortfall lists, sorted, the resources whose current usage exceeds the hard limits of a
// target quota ("requests.cpu: used 3, plan allows 2"). Empty means the usage fits. The
// reconciler refuses a plan change that does not fit, and changeInstanceCheck answers with the
// same check.
func QuotaShortfall(used, hard corev1.ResourceList) []string {
	var out []string
	for name, limit := range hard {
		if u, ok := used[name]; ok && u.Cmp(limit) > 0 {
			out = append(out, fmt.Sprintf("%s: used %s, plan allows %s", name, u.String(), limit.String()))
		}
	}
	slices.Sort(out)
	return out
}
