package koogallery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"testing"
)

// The [derived] vectors of koogallery-saas.md §2.5, key testAccessKey123.
const (
	vecKey       = "testAccessKey123"
	vecBody      = `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`
	vecNonce     = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
	vecTimestamp = "1680508066618"
	vecReply     = `{"resultCode":"000000","resultMsg":"success","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}`
)

func TestSpecVectors(t *testing.T) {
	key := []byte(vecKey)
	inner := hmac.New(sha256.New, key)
	inner.Write([]byte(vecBody))
	v1 := url.Values{
		"activity":   {"releaseInstance"},
		"instanceId": {"03pf80c2bae96vc49b80b917bea776d7"},
		"orderId":    {"CS1906666666ABCDE"},
		"testFlag":   {"1"},
		"timeStamp":  {"20170725025113409"},
	}
	key256, _ := CredentialKey(vecKey, EncryptAES256)
	key128, _ := CredentialKey(vecKey, EncryptAES128)
	enc1, err1 := EncryptCredential(vecKey, EncryptAES256, "admin@example.com", "A1b2C3d4E5f6G7h8")
	enc2, err2 := EncryptCredential(vecKey, EncryptAES128, "admin@example.com", "A1b2C3d4E5f6G7h8")
	if err1 != nil || err2 != nil {
		t.Fatalf("encrypt: %v, %v", err1, err2)
	}
	tests := []struct {
		name, got, want string
	}{
		{"V2 inner hash", hex.EncodeToString(inner.Sum(nil)), "9d7fe05c22e8bc1d70841bace6c549b523dcb77a8aa61dc0118708bf14269c0e"},
		{"V2 signature", SignBasic(key, []byte(vecBody), vecNonce, vecTimestamp), "CD8D59BB7FCF7574752B5EB0ED04B3ACF4A759DA53F24D30A79ABE45C5D1BA25"},
		{"kit x-sign", SignKit(key, []byte(vecBody), vecNonce, vecTimestamp), "ABB44B4C7A867A9F5EB8D9B7D9DF42E804FF66BC084EE412C49CFAFBFD5D8BE6"},
		{"Body-Sign", BodySign(key, []byte(vecReply)), `sign_type="HMAC-SHA256", signature="y63olT+DsckhbErrQra9a4WEOePNS8KW9nDy/RutT8E="`},
		{"V1 authToken", AuthToken(key, v1), "zAgPuAkGAElyjJ3iJ9atwuOGabPcTrAvEEI3sWq6S8M="},
		{"AES-256 key", hex.EncodeToString(key256), "0413c5de84a4312c10f237cf102c14f909635c067f68c442f5d9aa865fb0d176"},
		{"AES-128 key", hex.EncodeToString(key128), "0413c5de84a4312c10f237cf102c14f9"},
		{"encrypted type 1", enc1, "A1b2C3d4E5f6G7h8GWWdTC2G+G3b8S/kwaWTYAO2AbUAra1UUVgiqns0Kbk="},
		{"encrypted type 2", enc2, "A1b2C3d4E5f6G7h89nyjWJDEC9SMrP8fTmG1MvJ/v2zM81387u6Ws4QK/+4="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}
