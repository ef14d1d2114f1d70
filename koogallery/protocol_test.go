package koogallery

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

func TestParseEveryActivity(t *testing.T) {
	tests := []struct {
		body string
		want BasicRequest
	}{
		{vecBody, &NewInstanceRequest{Activity: ActivityNewInstance, OrderID: "CS2211181819B4LVS", OrderLineID: "CS2211181819B4LVS-000001",
			BusinessID: "87b94795-0603-4e24-8ae5-69420d60e3c8", TestFlag: TestFlagDebug}},
		{`{"activity":"queryInstance","instanceId":"a, b,a"}`, &QueryInstanceRequest{Activity: ActivityQueryInstance, InstanceID: "a, b,a"}},
		{`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"o","orderLineId":"l","instanceId":"i","expireTime":"20221124023618256","unknownNewField":"x"}`,
			&RefreshInstanceRequest{Activity: ActivityRefreshInstance, Scene: SceneRenewal, OrderID: "o", OrderLineID: "l", InstanceID: "i", ExpireTime: "20221124023618256"}},
		{`{"activity":"updateInstanceStatus","instanceId":"i","status":"UNFREEZE","testFlag":"0"}`,
			&UpdateInstanceStatusRequest{Activity: ActivityUpdateInstanceStatus, InstanceID: "i", Status: StatusUnfreeze, TestFlag: TestFlagProduction}},
		{`{"activity":"releaseInstance","instanceId":"i","orderId":null}`, &ReleaseInstanceRequest{Activity: ActivityReleaseInstance, InstanceID: "i"}},
		{`{"activity":"upgradeInstance","instanceId":"i","orderId":"o","orderLineId":"l"}`,
			&UpgradeInstanceRequest{Activity: ActivityUpgradeInstance, InstanceID: "i", OrderID: "o", OrderLineID: "l"}},
		{`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":"p","skuCode":"s","linearValue":"10","productName":"n"}}`,
			&ChangeInstanceCheckRequest{Activity: ActivityChangeInstanceCheck, InstanceID: "i", ProductInfo: ProductInfo{ProductID: "p", SKUCode: "s", LinearValue: NewInt(10), ProductName: "n"}}},
		{`{"activity":"orderNotify","orderId":"o","orderLineId":"l","testFlag":"1"}`,
			&OrderNotifyRequest{Activity: ActivityOrderNotify, OrderID: "o", OrderLineID: "l", TestFlag: TestFlagDebug}},
	}
	for _, tt := range tests {
		t.Run(tt.want.ActivityName(), func(t *testing.T) {
			got, err := ParseBasicRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			enc, err := MarshalRequest(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseBasicRequest(enc)
			if err != nil || !reflect.DeepEqual(again, tt.want) {
				t.Fatalf("round trip %s: %+v, %v", enc, again, err)
			}
		})
	}
	if len(tests) != len(Activities()) {
		t.Fatalf("%d activities tested, %d exist", len(tests), len(Activities()))
	}
}

func TestTestFlag(t *testing.T) {
	for flag, want := range map[TestFlag]bool{"": false, "0": false, "1": true} {
		if (&NewInstanceRequest{TestFlag: flag}).IsTest() != want {
			t.Errorf("testFlag %q", flag)
		}
	}
}

func TestQueryInstanceIDs(t *testing.T) {
	r := &QueryInstanceRequest{InstanceID: " a ,b,a,c"}
	ids, err := r.InstanceIDs()
	if err != nil || !reflect.DeepEqual(ids, []string{"a", "b", "c"}) {
		t.Fatalf("got %v, %v", ids, err)
	}
}

func TestParseExpireTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"20221124023618", time.Date(2022, 11, 24, 2, 36, 18, 0, time.UTC)},
		{"20221124023618256", time.Date(2022, 11, 24, 2, 36, 18, 256e6, time.UTC)},
	}
	for _, tt := range tests {
		got, err := ParseExpireTime(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseExpireTime(%s) = %v, %v", tt.in, got, err)
		}
	}
	for _, bad := range []string{"", "2022112402361", "202211240236182", "2022112402361825x", "20221324023618"} {
		if _, err := ParseExpireTime(bad); CodeOf(err) != ResultInvalidParam {
			t.Errorf("ParseExpireTime(%q) accepted", bad)
		}
	}
}

func TestKitRequests(t *testing.T) {
	tests := []struct {
		kind KitKind
		body string
		code string
	}{
		{KitTenantSync, `{"instanceId":"i","orderId":"o","tenantId":"t","tenantCode":"c","name":"n","domainName":"d","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultSuccess},
		{KitTenantSync, `{"instanceId":"","orderId":"","tenantId":"t","tenantCode":"c","name":"n","domainName":"d","flag":"2","testFlag":1,"timeStamp":"20220420114117642"}`, ResultSuccess},
		{KitTenantSync, `{"tenantId":"t","tenantCode":"c","name":"n","flag":5,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultInvalidParam},
		{KitTenantSync, `{"tenantId":"t","tenantCode":"c","name":"n","flag":1,"timeStamp":"20220420114117642"}`, ResultInvalidParam},
		{KitApplicationSync, `{"instanceId":"i","tenantId":"t","appId":"a","clientId":"c","clientSecret":"s","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultSuccess},
		{KitApplicationSync, `{"instanceId":"i","tenantId":"t","appId":"a","clientId":"c","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultInvalidParam},
		{KitAuthSync, `{"instanceId":"i","tenantId":"t","appId":"a","userList":[{"userName":"u","name":"n","orgCode":"o","role":"admin","enable":true}],"currentSyncTime":"20220420114117642","flag":3,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultSuccess},
		{KitAuthSync, `{"instanceId":"i","tenantId":"t","appId":"a","userList":"[{\"userName\":\"u\",\"name\":\"n\",\"orgCode\":\"o\",\"role\":\"user\",\"enable\":\"false\"}]","currentSyncTime":"20220420114117642","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultSuccess},
		{KitAuthSync, `{"instanceId":"i","tenantId":"t","appId":"a","userList":[{"userName":"u","name":"n","orgCode":"o","role":"root","enable":"true"}],"currentSyncTime":"20220420114117642","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultInvalidParam},
		{KitSingleOrgSync, `{"instanceId":"i","tenantId":"t","orgCode":"o","orgName":"n","flag":0,"testFlag":0,"timeStamp":"20220420114117642"}`, ResultSuccess},
		{KitAllOrgSync, `{"instanceId":"i","tenantId":"t","orgInfoList":"[{\"orgCode\":\"o\",\"orgName\":\"n\"}]","testFlag":0,"timeStamp":"20220420114117642"}`, ResultSuccess},
		{KitAllOrgSync, `{"instanceId":"i","tenantId":"t","orgInfoList":[],"testFlag":0,"timeStamp":"20220420114117642"}`, ResultInvalidParam},
		{KitAllOrgSync, `{"instanceId":"i","tenantId":"t","orgInfoList":[{"orgCode":"o","orgName":"n"}],"testFlag":0,"timeStamp":"2022-04-20"}`, ResultInvalidParam},
	}
	for i, tt := range tests {
		req, err := ParseKitRequest(tt.kind, []byte(tt.body))
		if CodeOf(err) != tt.code {
			t.Errorf("case %d (%s): got %v, want %s", i, tt.kind, err, tt.code)
			continue
		}
		if err == nil && req.Kind() != tt.kind {
			t.Errorf("case %d: kind %s", i, req.Kind())
		}
	}
	if k, ok := KitKindFromPath("/prefix" + KitPathAuthSync); !ok || k != KitAuthSync {
		t.Errorf("KitKindFromPath: %s %v", k, ok)
	}
	if _, err := ParseKitRequest("nope", []byte(`{}`)); CodeOf(err) != ResultInvalidParam {
		t.Errorf("unknown kit kind: %v", err)
	}
}

func TestMarshalReply(t *testing.T) {
	reply := QueryInstanceReply{
		Reply: Reply{ResultCode: ResultSuccess, ResultMsg: "success"},
		Info: []InstanceInfo{{InstanceID: "i", AppInfo: &AppInfo{FrontEndURL: "https://a.example.com/?x=1&y=<2>", UserName: "u", Password: "p", Memo: "中文😀"},
			UsageInfo: []UsageInfo{{UsageValue: 1.5, StatisticalTime: FormatStatisticalTime(vecNow)}}}},
		EncryptType: EncryptAES256,
	}
	b, err := MarshalReply(reply)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resultCode":"000000","resultMsg":"success","info":[{"instanceId":"i","appInfo":{"frontEndUrl":"https://a.example.com/?x=1&y=<2>","userName":"u","password":"p","memo":"\u4e2d\u6587\ud83d\ude00"},"usageInfo":[{"usageValue":1.5,"statisticalTime":"20230403074746618"}]}],"encryptType":"1"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back QueryInstanceReply
	if err := json.Unmarshal(b, &back); err != nil || back.Info[0].AppInfo.Memo != "中文😀" {
		t.Fatalf("decode: %v %+v", err, back)
	}
	b, _ = MarshalReply(NewInstanceReply{Reply: NewReply(nil), InstanceID: "x"})
	if string(b) != `{"resultCode":"000000","resultMsg":"success","instanceId":"x"}` {
		t.Fatalf("create reply %s", b)
	}
}

func TestWriteReply(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := WriteReply(rec, []byte(vecKey), NewReply(paramError(KindMissingField, "orderId is required"))); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.Bytes()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if string(body) != `{"resultCode":"000002","resultMsg":"orderId is required"}` {
		t.Fatalf("body %s", body)
	}
	if _, ok := rec.Header()["Body-Sign"]; !ok {
		t.Fatal("header must be spelled Body-Sign")
	}
	if err := VerifyBodySign([][]byte{[]byte(vecKey)}, rec.Header().Get(HeaderBodySign), body); err != nil {
		t.Fatal(err)
	}
}

func TestAppInfoValidate(t *testing.T) {
	long := make([]rune, 1025)
	for i := range long {
		long[i] = '中'
	}
	if err := (&AppInfo{FrontEndURL: "u", Memo: string(long)}).Validate(); KindOf(err) != KindFieldTooLong {
		t.Fatalf("memo: %v", err)
	}
	if err := (&AppInfo{}).Validate(); KindOf(err) != KindMissingField {
		t.Fatalf("frontEndUrl: %v", err)
	}
}

func TestCredentialRoundTrip(t *testing.T) {
	for _, typ := range []EncryptType{EncryptNone, EncryptAES256, EncryptAES128} {
		for _, text := range []string{"", "p", "exactly16chars!!", "pässwörd-with-ünïcode"} {
			enc, err := EncryptCredential(vecKey, typ, text, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecryptCredential(vecKey, typ, enc)
			if err != nil || got != text {
				t.Fatalf("type %q %q: got %q, %v", typ, text, got, err)
			}
			if got, err := DecryptCredential("otherKey", typ, enc); err == nil && got == text {
				t.Fatalf("decrypted with another key")
			}
		}
	}
	for _, bad := range []string{"short", "A1b2C3d4E5f6G7h8!!!", "A1b2C3d4E5f6G7h8AAAA"} {
		if _, err := DecryptCredential(vecKey, EncryptAES256, bad); CodeOf(err) != ResultInvalidParam {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := EncryptCredential(vecKey, "3", "x", ""); err == nil {
		t.Error("unknown type accepted")
	}
	if _, err := EncryptCredential(vecKey, EncryptAES256, "x", "short"); err == nil {
		t.Error("short IV accepted")
	}
}

func TestDecryptClientSecret(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048) // 3072 in production; smaller keeps the test fast
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptClientSecret(&priv.PublicKey, "typed-secret")
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]string{"SHA-1 (Java OAEPPadding)": enc}
	for name, opts := range map[string]*rsa.OAEPOptions{
		"SHA-256":             {Hash: crypto.SHA256, MGFHash: crypto.SHA256},
		"SHA-256, MGF1 SHA-1": {Hash: crypto.SHA256, MGFHash: crypto.SHA1},
	} {
		ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, &priv.PublicKey, []byte("typed-secret"), opts)
		if err != nil {
			t.Fatal(err)
		}
		variants[name] = base64.StdEncoding.EncodeToString(ct)
	}
	for name, v := range variants {
		if got, err := DecryptClientSecret(priv, v); err != nil || got != "typed-secret" {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if _, err := DecryptClientSecret(priv, "!!"); CodeOf(err) != ResultInvalidParam {
		t.Errorf("bad base64: %v", err)
	}
}
