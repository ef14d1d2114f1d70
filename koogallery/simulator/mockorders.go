package simulator

import (
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// Mock order IDs that KooGallery answers for debug calls (koogallery-openapi.md §1.1).
const (
	MockPeriodYearNew       = "MOCKPERIODYEARNEW"
	MockOneTimeNew          = "MOCKONETIMENEW"
	MockOnDemand            = "MOCKONDEMAND"
	MockOnDemandPkg         = "MOCKONDEMANDPKG"
	MockPeriodDayTrial      = "MOCKPERIODDAYTRIAL"
	MockMonthTrialToFormal  = "MOCKMONTYTRIALTOFORMAL"
	MockMonthUnsubscribe    = "MOCKMONTYUNSUBSCRIBE"
	MockMonthRenew          = "MOCKMONTYRENEW"
	MockMonthChange         = "MOCKMONTYCHANGE"
	mockLineSuffix          = "-000001"
	mockProductID           = "OFFI846204237451911168"
	mockSKU                 = "0a4d1578-5295-46a7-92d4-7c803dccc51d"
	mockUpgradeSKU          = "5b7c1e0a-2f0d-4b8e-9a3c-6d1f2e3a4b5c"
	mockProductNamePeriod   = "MOCK测试商品,测试规格,基础版,包周期"
	mockProductNameUpgraded = "MOCK测试商品,测试规格,专业版,包周期"
	// A pay-per-use product is listed apart from the yearly/monthly one, so the pay-per-use mock
	// orders carry a product and SKU of their own: a plan selects its tenants' metering by SKU.
	MockOnDemandProductID = "OFFI846204237451911170"
	MockOnDemandSKU       = "7e2c9a41-3b5d-4f6e-8a1c-2d4b6f8e0a13"
)

// MockLineID returns the order line ID of a mock order.
func MockLineID(orderID string) string { return orderID + mockLineSuffix }

func at(s string) time.Time {
	t, err := time.Parse("20060102150405", s)
	if err != nil {
		panic(err)
	}
	return t
}

// MockOrders returns the debug orders of the spec. MOCKPERIODYEARNEW is the captured real
// response; the others are not published, so they are built from their documented scenario
// (order type, charging mode, period) on the same product.
func MockOrders() []openapi.Order {
	customerType := 0
	buyer := &openapi.BuyerInfo{
		MobilePhone: "18688888888", CustomerID: "459bbbec25d24749b2eb83be37b602a8",
		CustomerName: "mock_user_01", CustomerRealName: "测试用户1", CustomerType: &customerType,
	}
	extend := []openapi.ExtendParam{{Name: "emailDomainName", Value: "test.xxxx.com"}, {Name: "ip", Value: "127.0.0.1"}}
	mk := func(id, orderType, mode, period string, num int, expire, sku, name string) openapi.Order {
		product := mockProductID
		if sku == MockOnDemandSKU {
			product = MockOnDemandProductID
		}
		line := openapi.OrderLine{
			OrderLineID: MockLineID(id), ChargingMode: mode, PeriodType: period, PeriodNum: num,
			Products:     []openapi.Product{{ProductID: product, SKUCode: sku, LinearValue: 50, ProductName: name}},
			ExtendParams: extend, Currency: "100", CurrencyAfterDiscount: "100",
		}
		if expire != "" {
			line.ExpireTime = at(expire)
		}
		return openapi.Order{OrderID: id, OrderType: orderType, CreateTime: at("20241121090846"), Lines: []openapi.OrderLine{line}, Buyer: buyer}
	}
	return []openapi.Order{
		mk(MockPeriodYearNew, openapi.OrderTypeNew, openapi.ChargingPeriod, openapi.PeriodYear, 1, "20251121235959", mockSKU, mockProductNamePeriod),
		mk(MockOneTimeNew, openapi.OrderTypeNew, openapi.ChargingOneTime, "", 0, "", mockSKU, "MOCK测试商品,测试规格,基础版,按次"),
		mk(MockOnDemand, openapi.OrderTypeNew, openapi.ChargingOnDemand, "", 0, "", MockOnDemandSKU, "MOCK测试商品,测试规格,基础版,按需"),
		mk(MockOnDemandPkg, openapi.OrderTypeNew, openapi.ChargingOnDemandPkg, openapi.PeriodMonth, 1, "20241221235959", MockOnDemandSKU, "MOCK测试商品,测试规格,基础版,按需套餐包"),
		mk(MockPeriodDayTrial, openapi.OrderTypeTrial, openapi.ChargingPeriod, openapi.PeriodDay, 7, "20241128235959", mockSKU, mockProductNamePeriod),
		mk(MockMonthTrialToFormal, openapi.OrderTypeTrialToFormal, openapi.ChargingPeriod, openapi.PeriodMonth, 1, "20241221235959", mockSKU, mockProductNamePeriod),
		mk(MockMonthUnsubscribe, openapi.OrderTypeUnsubscribe, openapi.ChargingPeriod, openapi.PeriodMonth, 1, "20241121235959", mockSKU, mockProductNamePeriod),
		mk(MockMonthRenew, openapi.OrderTypeRenew, openapi.ChargingPeriod, openapi.PeriodMonth, 1, "20251221235959", mockSKU, mockProductNamePeriod),
		mk(MockMonthChange, openapi.OrderTypeChange, openapi.ChargingPeriod, openapi.PeriodMonth, 1, "20251221235959", mockUpgradeSKU, mockProductNameUpgraded),
	}
}
