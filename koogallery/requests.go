package koogallery

import (
	"strings"
	"time"
)

// Activities of the V2 basic interface (§1.1–1.8): the value of the body's activity field.
const (
	ActivityNewInstance          = "newInstance"
	ActivityQueryInstance        = "queryInstance"
	ActivityRefreshInstance      = "refreshInstance"
	ActivityUpdateInstanceStatus = "updateInstanceStatus"
	ActivityReleaseInstance      = "releaseInstance"
	ActivityUpgradeInstance      = "upgradeInstance"
	ActivityChangeInstanceCheck  = "changeInstanceCheck"
	ActivityOrderNotify          = "orderNotify"
)

// Activities lists every basic activity in lifecycle order.
func Activities() []string {
	return []string{
		ActivityNewInstance, ActivityQueryInstance, ActivityRefreshInstance,
		ActivityUpdateInstanceStatus, ActivityReleaseInstance, ActivityUpgradeInstance,
		ActivityChangeInstanceCheck, ActivityOrderNotify,
	}
}

// Scenes of refreshInstance.
const (
	SceneTrialToFormal            = "TRIAL_TO_FORMAL"
	SceneRenewal                  = "RENEWAL"
	SceneUnsubscribeRenewalPeriod = "UNSUBSCRIBE_RENEWAL_PERIOD"
	SceneRenewalChange            = "RENEWAL_CHANGE"
)

// Statuses of updateInstanceStatus.
const (
	StatusFreeze   = "FREEZE"
	StatusUnfreeze = "UNFREEZE"
)

// MaxQueryIDs is the documented maximum number of instance IDs in one queryInstance.
const MaxQueryIDs = 100

// Field length limits of §1 (characters).
const (
	maxID     = 64
	maxScene  = 64
	maxExpire = 20
	maxStatus = 32
)

// BasicRequest is a parsed basic-interface request.
type BasicRequest interface {
	// ActivityName is the activity this request type carries.
	ActivityName() string
	// IsTest reports a debug call (testFlag "1").
	IsTest() bool
	// Validate checks required fields, lengths, enums and formats.
	Validate() error
}

// NewInstanceRequest is newInstance (§1.1): the buyer paid.
type NewInstanceRequest struct {
	Activity    string   `json:"activity"`
	OrderID     string   `json:"orderId"`
	OrderLineID string   `json:"orderLineId"`
	BusinessID  string   `json:"businessId"`
	TestFlag    TestFlag `json:"testFlag,omitempty"`
}

// ActivityName implements BasicRequest.
func (*NewInstanceRequest) ActivityName() string { return ActivityNewInstance }

// IsTest implements BasicRequest.
func (r *NewInstanceRequest) IsTest() bool { return r.TestFlag.IsTest() }

// Validate implements BasicRequest.
func (r *NewInstanceRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityNewInstance)
	c.required("orderId", r.OrderID, maxID)
	c.required("orderLineId", r.OrderLineID, maxID)
	c.required("businessId", r.BusinessID, maxID)
	c.testFlag(r.TestFlag, false)
	return c.err
}

// QueryInstanceRequest is queryInstance (§1.2): one or more comma-separated instance IDs.
type QueryInstanceRequest struct {
	Activity   string   `json:"activity"`
	InstanceID string   `json:"instanceId"`
	TestFlag   TestFlag `json:"testFlag,omitempty"`
}

// ActivityName implements BasicRequest.
func (*QueryInstanceRequest) ActivityName() string { return ActivityQueryInstance }

// IsTest implements BasicRequest.
func (r *QueryInstanceRequest) IsTest() bool { return r.TestFlag.IsTest() }

// InstanceIDs splits instanceId on commas, trimming blanks and dropping duplicates while keeping
// the order. The documented 100-character limit of the field contradicts "up to 100 IDs", so the
// limit enforced is on the number of IDs and on each ID's length, not on the whole string.
func (r *QueryInstanceRequest) InstanceIDs() ([]string, error) {
	parts := strings.Split(r.InstanceID, ",")
	if len(parts) > MaxQueryIDs {
		return nil, paramError(KindFieldTooLong, "instanceId lists more than 100 IDs")
	}
	ids := make([]string, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		var c checker
		c.required("instanceId", p, maxID)
		if c.err != nil {
			return nil, c.err
		}
		if !seen[p] {
			seen[p] = true
			ids = append(ids, p)
		}
	}
	return ids, nil
}

// Validate implements BasicRequest.
func (r *QueryInstanceRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityQueryInstance)
	c.testFlag(r.TestFlag, false)
	if c.err != nil {
		return c.err
	}
	_, err := r.InstanceIDs()
	return err
}

// RefreshInstanceRequest is refreshInstance (§1.3): renewal, trial to paid, renewal cancelled.
type RefreshInstanceRequest struct {
	Activity    string   `json:"activity"`
	Scene       string   `json:"scene"`
	OrderID     string   `json:"orderId"`
	OrderLineID string   `json:"orderLineId"`
	InstanceID  string   `json:"instanceId"`
	ProductID   string   `json:"productId,omitempty"`
	ExpireTime  string   `json:"expireTime"`
	TestFlag    TestFlag `json:"testFlag,omitempty"`
}

// ActivityName implements BasicRequest.
func (*RefreshInstanceRequest) ActivityName() string { return ActivityRefreshInstance }

// IsTest implements BasicRequest.
func (r *RefreshInstanceRequest) IsTest() bool { return r.TestFlag.IsTest() }

// ExpireAt parses ExpireTime (14 or 17 digits, UTC).
func (r *RefreshInstanceRequest) ExpireAt() (time.Time, error) { return ParseExpireTime(r.ExpireTime) }

// Validate implements BasicRequest.
func (r *RefreshInstanceRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityRefreshInstance)
	c.required("scene", r.Scene, maxScene)
	c.oneOf("scene", r.Scene, SceneTrialToFormal, SceneRenewal, SceneUnsubscribeRenewalPeriod, SceneRenewalChange)
	c.required("orderId", r.OrderID, maxID)
	c.required("orderLineId", r.OrderLineID, maxID)
	c.required("instanceId", r.InstanceID, maxID)
	c.optional("productId", r.ProductID, maxID)
	c.required("expireTime", r.ExpireTime, maxExpire)
	c.testFlag(r.TestFlag, false)
	if c.err != nil {
		return c.err
	}
	_, err := r.ExpireAt()
	return err
}

// UpdateInstanceStatusRequest is updateInstanceStatus (§1.4): freeze or unfreeze.
type UpdateInstanceStatusRequest struct {
	Activity   string   `json:"activity"`
	InstanceID string   `json:"instanceId"`
	Status     string   `json:"status"`
	TestFlag   TestFlag `json:"testFlag,omitempty"`
}

// ActivityName implements BasicRequest.
func (*UpdateInstanceStatusRequest) ActivityName() string { return ActivityUpdateInstanceStatus }

// IsTest implements BasicRequest.
func (r *UpdateInstanceStatusRequest) IsTest() bool { return r.TestFlag.IsTest() }

// Validate implements BasicRequest.
func (r *UpdateInstanceStatusRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityUpdateInstanceStatus)
	c.required("instanceId", r.InstanceID, maxID)
	c.required("status", r.Status, maxStatus)
	c.oneOf("status", r.Status, StatusFreeze, StatusUnfreeze)
	c.testFlag(r.TestFlag, false)
	return c.err
}

// ReleaseInstanceRequest is releaseInstance (§1.5). OrderID and OrderLineID are set when the
// release comes from an unsubscription.
type ReleaseInstanceRequest struct {
	Activity    string   `json:"activity"`
	InstanceID  string   `json:"instanceId"`
	OrderID     string   `json:"orderId,omitempty"`
	OrderLineID string   `json:"orderLineId,omitempty"`
	TestFlag    TestFlag `json:"testFlag,omitempty"`
}

// ActivityName implements BasicRequest.
func (*ReleaseInstanceRequest) ActivityName() string { return ActivityReleaseInstance }

// IsTest implements BasicRequest.
func (r *ReleaseInstanceRequest) IsTest() bool { return r.TestFlag.IsTest() }

// Validate implements BasicRequest.
func (r *ReleaseInstanceRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityReleaseInstance)
	c.required("instanceId", r.InstanceID, maxID)
	c.optional("orderId", r.OrderID, maxID)
	c.optional("orderLineId", r.OrderLineID, maxID)
	c.testFlag(r.TestFlag, false)
	return c.err
}

// UpgradeInstanceRequest is upgradeInstance (§1.6): OrderID is the new upgrade order.
type UpgradeInstanceRequest struct {
	Activity    string   `json:"activity"`
	InstanceID  string   `json:"instanceId"`
	OrderID     string   `json:"orderId"`
	OrderLineID string   `json:"orderLineId"`
	TestFlag    TestFlag `json:"testFlag,omitempty"`
}

// ActivityName implements BasicRequest.
func (*UpgradeInstanceRequest) ActivityName() string { return ActivityUpgradeInstance }

// IsTest implements BasicRequest.
func (r *UpgradeInstanceRequest) IsTest() bool { return r.TestFlag.IsTest() }

// Validate implements BasicRequest.
func (r *UpgradeInstanceRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityUpgradeInstance)
	c.required("instanceId", r.InstanceID, maxID)
	c.required("orderId", r.OrderID, maxID)
	c.required("orderLineId", r.OrderLineID, maxID)
	c.testFlag(r.TestFlag, false)
	return c.err
}

// ProductInfo is the target specification of changeInstanceCheck.
type ProductInfo struct {
	ProductID   string `json:"productId"`
	SKUCode     string `json:"skuCode"`
	LinearValue Int    `json:"linearValue,omitzero"`
	ProductName string `json:"productName"`
}

// ChangeInstanceCheckRequest is changeInstanceCheck (§1.7): may the instance move to ProductInfo?
type ChangeInstanceCheckRequest struct {
	Activity    string      `json:"activity"`
	InstanceID  string      `json:"instanceId"`
	ProductInfo ProductInfo `json:"productInfo"`
	TestFlag    TestFlag    `json:"testFlag,omitempty"`
}

// ActivityName implements BasicRequest.
func (*ChangeInstanceCheckRequest) ActivityName() string { return ActivityChangeInstanceCheck }

// IsTest implements BasicRequest.
func (r *ChangeInstanceCheckRequest) IsTest() bool { return r.TestFlag.IsTest() }

// Validate implements BasicRequest.
func (r *ChangeInstanceCheckRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityChangeInstanceCheck)
	c.required("instanceId", r.InstanceID, maxID)
	c.required("productInfo.productId", r.ProductInfo.ProductID, maxID)
	c.required("productInfo.skuCode", r.ProductInfo.SKUCode, maxID)
	c.required("productInfo.productName", r.ProductInfo.ProductName, maxID)
	if r.ProductInfo.LinearValue.Set && r.ProductInfo.LinearValue.Value < 0 {
		c.fail(KindBadValue, "productInfo.linearValue must not be negative")
	}
	c.testFlag(r.TestFlag, false)
	return c.err
}

// OrderNotifyRequest is orderNotify (§1.8); unlike the others its testFlag is mandatory.
type OrderNotifyRequest struct {
	Activity    string   `json:"activity"`
	OrderID     string   `json:"orderId"`
	OrderLineID string   `json:"orderLineId"`
	TestFlag    TestFlag `json:"testFlag"`
}

// ActivityName implements BasicRequest.
func (*OrderNotifyRequest) ActivityName() string { return ActivityOrderNotify }

// IsTest implements BasicRequest.
func (r *OrderNotifyRequest) IsTest() bool { return r.TestFlag.IsTest() }

// Validate implements BasicRequest.
func (r *OrderNotifyRequest) Validate() error {
	var c checker
	c.activity(r.Activity, ActivityOrderNotify)
	c.required("orderId", r.OrderID, maxID)
	c.required("orderLineId", r.OrderLineID, maxID)
	c.testFlag(r.TestFlag, true)
	return c.err
}

// newBasicRequest returns an empty request of the activity, or nil for an unknown activity.
func newBasicRequest(activity string) BasicRequest {
	switch activity {
	case ActivityNewInstance:
		return &NewInstanceRequest{}
	case ActivityQueryInstance:
		return &QueryInstanceRequest{}
	case ActivityRefreshInstance:
		return &RefreshInstanceRequest{}
	case ActivityUpdateInstanceStatus:
		return &UpdateInstanceStatusRequest{}
	case ActivityReleaseInstance:
		return &ReleaseInstanceRequest{}
	case ActivityUpgradeInstance:
		return &UpgradeInstanceRequest{}
	case ActivityChangeInstanceCheck:
		return &ChangeInstanceCheckRequest{}
	case ActivityOrderNotify:
		return &OrderNotifyRequest{}
	}
	return nil
}
