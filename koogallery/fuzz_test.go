package koogallery

import (
	"bytes"
	"net/http"
	"testing"
)

// Seeds beyond these live in testdata/fuzz.
var fuzzSeeds = []string{
	vecBody,
	`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"skuCode":"s","productId":"p","productName":"n","linearValue":3}}`,
	`{"activity":"queryInstance","instanceId":"a,b,c"}`,
	`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"o","orderLineId":"l","instanceId":"i","expireTime":"20221124023618256"}`,
	`{"b":null,"a":"\u4e2d\n"}`,
	`[]`,
	`{"activity":"newInstance","activity":"queryInstance"}`,
}

// FuzzParseBasicRequest: parsing never panics, and whatever parses and validates re-encodes to a
// body that parses to the same activity.
func FuzzParseBasicRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseBasicRequest(body)
		if err != nil {
			if CodeOf(err) != ResultInvalidParam {
				t.Fatalf("parse error with code %s: %v", CodeOf(err), err)
			}
			return
		}
		enc, err := MarshalRequest(req)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		again, err := ParseBasicRequest(enc)
		if err != nil || again.ActivityName() != req.ActivityName() {
			t.Fatalf("re-parse of %s: %v", enc, err)
		}
	})
}

// FuzzParseKitRequest: kit parsing never panics and fails only with 000002.
func FuzzParseKitRequest(f *testing.F) {
	f.Add(uint8(0), []byte(`{"tenantId":"t","tenantCode":"c","name":"n","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}`))
	f.Add(uint8(2), []byte(`{"userList":"[{\"userName\":\"u\"}]","flag":3}`))
	f.Add(uint8(4), []byte(`{"orgInfoList":"[]"}`))
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		kinds := KitKinds()
		_, err := ParseKitRequest(kinds[int(k)%len(kinds)], body)
		if err != nil && CodeOf(err) != ResultInvalidParam {
			t.Fatalf("code %s: %v", CodeOf(err), err)
		}
	})
}

// FuzzCanonical: canonicalisation never panics, is idempotent, and its output is valid JSON
// that canonicalises to itself.
func FuzzCanonical(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := Canonical(body)
		if err != nil {
			return
		}
		c2, err := Canonical(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %s -> %s (%v)", c, c2, err)
		}
	})
}

// FuzzVerify: verification of arbitrary parameters never panics, never accepts a signature made
// with another key, and always accepts a correct one once.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(vecBody), vecNonce, vecTimestamp, "CD8D59BB7FCF7574752B5EB0ED04B3ACF4A759DA53F24D30A79ABE45C5D1BA25")
	f.Add([]byte(`{}`), "n", "1680508066", "zz")
	f.Add([]byte(``), "", "", "")
	f.Fuzz(func(t *testing.T, body []byte, nonce, ts, sig string) {
		v := newTestVerifier(vecNow, vecKey)
		_ = v.VerifyBasic(query(sig, ts, nonce), body)
		h := http.Header{}
		h.Set(HeaderSign, sig)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderNonce, nonce)
		_ = v.VerifyKit(h, body)

		good := SignBasic([]byte(vecKey), body, nonce, vecTimestamp)
		fresh := newTestVerifier(vecNow, vecKey)
		if err := fresh.VerifyBasic(query(SignBasic([]byte("other"), body, nonce, vecTimestamp), vecTimestamp, nonce), body); err == nil {
			t.Fatal("accepted a signature made with another key")
		}
		err := fresh.VerifyBasic(query(good, vecTimestamp, nonce), body)
		validNonce := nonce != "" && len(nonce) <= MaxNonceLength
		if validNonce != (err == nil) {
			t.Fatalf("correct signature with nonce %q: %v", nonce, err)
		}
	})
}
