package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Order types of orderInfo.orderType.
const (
	OrderTypeNew           = "NEW"
	OrderTypeTrial         = "TRIAL"
	OrderTypeTrialToFormal = "TRIAL_TO_FORMAL"
	OrderTypeUnsubscribe   = "UNSUBSCRIBE"
	OrderTypeRenew         = "RENEW"
	OrderTypeChange        = "CHANGE"
)

// Charging modes of orderLine.chargingMode.
const (
	ChargingOnDemand    = "ON_DEMAND"
	ChargingOneTime     = "ONE_TIME"
	ChargingPeriod      = "PERIOD"
	ChargingOnDemandPkg = "ON_DEMAND_PKG"
)

// Period types seen in orderLine.periodType ("day" and "hour" are not confirmed by the docs).
const (
	PeriodYear  = "year"
	PeriodMonth = "month"
	PeriodDay   = "day"
	PeriodHour  = "hour"
)

// timeLayout is createTime's and expireTime's yyyyMMddHHmmss. The docs do not give their zone;
// they are read as UTC, matching refreshInstance's expireTime.
const timeLayout = "20060102150405"

// Order is a KooGallery order as Query Order returns it. It marshals to and from the wire form
// of orderInfo.
type Order struct {
	OrderID      string
	OrderType    string
	CreateTime   time.Time
	Lines        []OrderLine
	Buyer        *BuyerInfo
	ExtendParams []ExtendParam
}

// OrderLine is one line of an order. ExpireTime is zero when absent (pay-per-use lines).
type OrderLine struct {
	OrderLineID           string
	ChargingMode          string
	PeriodType            string
	PeriodNum             int
	ExpireTime            time.Time
	Products              []Product
	ExtendParams          []ExtendParam
	Currency              string
	CurrencyAfterDiscount string
}

// Product is one product of an order line; SKUCode selects the plan.
type Product struct {
	ProductID   string
	SKUCode     string
	ProductName string
	LinearValue int
}

// BuyerInfo is the buyer; it is personal data and must be handled as such.
type BuyerInfo struct {
	CustomerID       string `json:"customerId,omitempty"`
	CustomerName     string `json:"customerName,omitempty"`
	CustomerRealName string `json:"customerRealName,omitempty"`
	CustomerType     *int   `json:"customerType,omitempty"`
	UserID           string `json:"userId,omitempty"`
	UserName         string `json:"userName,omitempty"`
	MobilePhone      string `json:"mobilePhone,omitempty"`
	Email            string `json:"email,omitempty"`
}

// ExtendParam is a buyer-filled extension parameter.
type ExtendParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Line returns the order line with the given ID.
func (o *Order) Line(id string) (*OrderLine, bool) {
	for i := range o.Lines {
		if o.Lines[i].OrderLineID == id {
			return &o.Lines[i], true
		}
	}
	return nil, false
}

// Product returns the line's first product, the one that carries the SKU in every known order.
func (l *OrderLine) Product() (Product, bool) {
	if len(l.Products) == 0 {
		return Product{}, false
	}
	return l.Products[0], true
}

type wireOrder struct {
	OrderID      string        `json:"orderId"`
	OrderType    string        `json:"orderType"`
	CreateTime   string        `json:"createTime"`
	OrderLine    []wireLine    `json:"orderLine"`
	BuyerInfo    *BuyerInfo    `json:"buyerInfo,omitempty"`
	ExtendParams []ExtendParam `json:"extendParams"`
}

type wireLine struct {
	OrderLineID           string        `json:"orderLineId"`
	ChargingMode          string        `json:"chargingMode"`
	PeriodType            string        `json:"periodType,omitempty"`
	PeriodNumber          looseNumber   `json:"periodNumber,omitempty"`
	ExpireTime            string        `json:"expireTime,omitempty"`
	ProductInfo           []wireProduct `json:"productInfo"`
	ExtendParams          []ExtendParam `json:"extendParams,omitempty"`
	Currency              looseString   `json:"currency,omitempty"`
	CurrencyAfterDiscount looseString   `json:"currencyAfterDiscount,omitempty"`
}

type wireProduct struct {
	ProductID   string      `json:"productId"`
	SKUCode     string      `json:"skuCode"`
	LinearValue looseNumber `json:"linearValue,omitempty"`
	ProductName string      `json:"productName"`
}

// looseNumber accepts a JSON number, a numeric string or null, because the mock and the docs
// disagree on the types of periodNumber and linearValue.
type looseNumber int

func (n *looseNumber) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" || s == "" {
		*n = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a number, got %.20q", s)
	}
	*n = looseNumber(f)
	return nil
}

// looseString accepts a string, a number or null (currency is a string in the mock, a number
// elsewhere).
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("decoding string: %w", err)
		}
		*s = looseString(v)
		return nil
	}
	if string(b) == "null" {
		*s = ""
		return nil
	}
	*s = looseString(b)
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %.20q is not yyyyMMddHHmmss", field, s)
	}
	return t, nil
}

// MarshalJSON writes the orderInfo wire form.
func (o Order) MarshalJSON() ([]byte, error) {
	w := wireOrder{
		OrderID: o.OrderID, OrderType: o.OrderType, CreateTime: formatTime(o.CreateTime),
		BuyerInfo: o.Buyer, ExtendParams: o.ExtendParams,
	}
	if w.ExtendParams == nil {
		w.ExtendParams = []ExtendParam{}
	}
	for _, l := range o.Lines {
		wl := wireLine{
			OrderLineID: l.OrderLineID, ChargingMode: l.ChargingMode, PeriodType: l.PeriodType,
			PeriodNumber: looseNumber(l.PeriodNum), ExpireTime: formatTime(l.ExpireTime),
			ExtendParams: l.ExtendParams, Currency: looseString(l.Currency),
			CurrencyAfterDiscount: looseString(l.CurrencyAfterDiscount),
		}
		for _, p := range l.Products {
			wl.ProductInfo = append(wl.ProductInfo, wireProduct{
				ProductID: p.ProductID, SKUCode: p.SKUCode, LinearValue: looseNumber(p.LinearValue), ProductName: p.ProductName,
			})
		}
		w.OrderLine = append(w.OrderLine, wl)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding order: %w", err)
	}
	return b, nil
}

// UnmarshalJSON reads the orderInfo wire form defensively: nulls and loosely typed numbers are
// accepted.
func (o *Order) UnmarshalJSON(b []byte) error {
	var w wireOrder
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decoding orderInfo: %w", err)
	}
	created, err := parseTime("createTime", w.CreateTime)
	if err != nil {
		return err
	}
	*o = Order{OrderID: w.OrderID, OrderType: w.OrderType, CreateTime: created, Buyer: w.BuyerInfo, ExtendParams: w.ExtendParams}
	for _, wl := range w.OrderLine {
		expire, err := parseTime("expireTime", wl.ExpireTime)
		if err != nil {
			return err
		}
		l := OrderLine{
			OrderLineID: wl.OrderLineID, ChargingMode: wl.ChargingMode, PeriodType: wl.PeriodType,
			PeriodNum: int(wl.PeriodNumber), ExpireTime: expire, ExtendParams: wl.ExtendParams,
			Currency: string(wl.Currency), CurrencyAfterDiscount: string(wl.CurrencyAfterDiscount),
		}
		for _, p := range wl.ProductInfo {
			l.Products = append(l.Products, Product{
				ProductID: p.ProductID, SKUCode: p.SKUCode, ProductName: p.ProductName, LinearValue: int(p.LinearValue),
			})
		}
		o.Lines = append(o.Lines, l)
	}
	return nil
}
