package koogallery

import (
	"strings"
	"testing"
)

// encoding/json matches keys to fields ignoring case: two keys that differ only in case would
// let the later one win silently. They are refused at every level, and in the kit lists sent as
// strings.
func TestKeysDifferingOnlyInCase(t *testing.T) {
	basic := []string{
		`{"activity":"newInstance","orderId":"o","ORDERID":"p","orderLineId":"l","businessId":"b"}`,
		`{"activity":"newInstance","orderId":"o","orderLineId":"l","businessId":"b","BusinessId":"c"}`,
		`{"ACTIVITY":"queryInstance","activity":"newInstance","orderId":"o","orderLineId":"l","businessId":"b"}`,
		`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"skuCode":"s","SKUCODE":"t","productId":"p","productName":"n","linearValue":3}}`,
		`{"activity":"newInstance","orderId":"o","orderLineId":"l","businessId":"b","extra":{"a":1,"A":2}}`,
		// U+212A KELVIN SIGN folds to k as encoding/json folds keys.
		`{"activity":"queryInstance","instanceId":"i","sku":"a","s\u212au":"b"}`,
		`{"activity":"queryInstance","instanceId":"i","x":[{"y":1,"\u0059":2}]}`,
	}
	for _, body := range basic {
		_, err := ParseBasicRequest([]byte(body))
		if KindOf(err) != KindBadJSON || CodeOf(err) != ResultInvalidParam {
			t.Errorf("%s: %v", body, err)
		}
	}
	kit := []struct {
		kind KitKind
		body string
	}{
		{KitTenantSync, `{"tenantId":"t","TENANTID":"u","tenantCode":"c","name":"n","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}`},
		{KitAuthSync, `{"tenantId":"t","appId":"a","currentSyncTime":"20220420114117642","flag":1,"testFlag":0,"timeStamp":"20220420114117642",` +
			`"userList":"[{\"userName\":\"u\",\"USERNAME\":\"admin\",\"name\":\"n\",\"orgCode\":\"o\",\"role\":\"user\",\"enable\":\"true\"}]"}`},
		{KitAllOrgSync, `{"tenantId":"t","testFlag":0,"timeStamp":"20220420114117642","orgInfoList":[{"orgCode":"a","OrgCode":"b","orgName":"n"}]}`},
	}
	for _, tt := range kit {
		_, err := ParseKitRequest(tt.kind, []byte(tt.body))
		if KindOf(err) != KindBadJSON || CodeOf(err) != ResultInvalidParam {
			t.Errorf("%s %s: %v", tt.kind, tt.body, err)
		}
	}
	// Keys that only look alike stay accepted, as do equal keys in different objects.
	fine := []string{
		`{"activity":"queryInstance","instanceId":"i","x":[{"a":1},{"a":2}],"y":{"a":{"a":1}}}`,
		`{"activity":"queryInstance","instanceId":"i","orderId":"o","orderIds":"p","order_id":"q"}`,
		`{"activity":"queryInstance","instanceId":"i","note":"{\"a\":1,\"A\":2}"}`,
	}
	for _, body := range fine {
		if _, err := ParseBasicRequest([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	if _, err := ParseBasicRequest([]byte(strings.Replace(vecBody, `"orderId"`, `"orderID"`, 1))); err != nil {
		t.Errorf("one key in another case, alone: %v", err)
	}
}
