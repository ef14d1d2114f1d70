package render

import (
	"encoding/json"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// EntitlementConfigMapName is the ConfigMap in the tenant namespace that tells the tenant's
// application what its buyer is entitled to, kept current by the operator. The application
// reads it (mounted as a volume, which the kubelet refreshes, or through the API) and holds no
// KooGallery key: it is the counterpart of AWS Marketplace's entitlement API.
const EntitlementConfigMapName = "marketplace-entitlement"

// Keys of the entitlement ConfigMap. EntitlementJSONKey holds all of it as one JSON document;
// the others are the same fields one per key, for environment variables.
const (
	EntitlementJSONKey = "entitlement.json"
)

// Entitlement is the entitlement document.
type Entitlement struct {
	InstanceID   string            `json:"instanceId"`
	Plan         string            `json:"plan"`
	ProductID    string            `json:"productId"`
	SKU          string            `json:"sku"`
	Quantity     int64             `json:"quantity"`
	ChargingMode string            `json:"chargingMode,omitempty"`
	PeriodType   string            `json:"periodType,omitempty"`
	PeriodNum    int32             `json:"periodNum,omitempty"`
	ExpireTime   string            `json:"expireTime,omitempty"`
	Frozen       bool              `json:"frozen"`
	Params       map[string]string `json:"params"`
}

// EntitlementConfigMap renders the entitlement of inst running plan: the resolved order,
// status.expireTime (the effective end of the paid period) and whether it is frozen now.
func EntitlementConfigMap(inst *v1alpha1.MarketplaceInstance, plan string, frozen bool) (*corev1.ConfigMap, error) {
	order := NewOrderData(inst.Status.Order)
	e := Entitlement{
		InstanceID: inst.Spec.InstanceID, Plan: plan, ProductID: order.ProductID, Quantity: order.Quantity,
		ChargingMode: order.ChargingMode, PeriodType: order.PeriodType, PeriodNum: order.PeriodNum,
		Frozen: frozen, Params: order.Params,
	}
	if inst.Status.Order != nil {
		e.SKU = inst.Status.Order.SKUCode
	}
	if t := inst.Status.ExpireTime; t != nil {
		e.ExpireTime = t.UTC().Format(time.RFC3339)
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta:   configMapType,
		ObjectMeta: tenantMeta(inst, EntitlementConfigMapName),
		Data: map[string]string{
			EntitlementJSONKey: string(doc),
			"plan":             e.Plan,
			"sku":              e.SKU,
			"quantity":         strconv.FormatInt(e.Quantity, 10),
			"expireTime":       e.ExpireTime,
			"frozen":           strconv.FormatBool(e.Frozen),
		},
	}, nil
}
