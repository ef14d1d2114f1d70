package koogallery

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// accept runs what the webhook runs for a basic call: verification, then parsing.
func accept(v *Verifier, q url.Values, body []byte) error {
	if err := v.VerifyBasic(q, body); err != nil {
		return err
	}
	_, err := ParseBasicRequest(body)
	return err
}

// signed returns the query of a correctly signed body with a nonce unique to the case.
func signed(body string, n int) url.Values {
	nonce := fmt.Sprintf("case%02d", n)
	return query(SignBasic([]byte(vecKey), []byte(body), nonce, vecTimestamp), vecTimestamp, nonce)
}

func TestBadRequests(t *testing.T) {
	long := strings.Repeat("x", 65)
	ids101 := strings.TrimSuffix(strings.Repeat("i,", 101), ",")
	good := `{"activity":"newInstance","businessId":"b","orderId":"o","orderLineId":"l"}`
	sig := SignBasic([]byte(vecKey), []byte(good), "n", vecTimestamp)
	tests := []struct {
		name  string
		query url.Values // nil: sign the body
		body  string
		code  string
		kind  Kind
	}{
		{"missing signature", query("", vecTimestamp, "n"), good, ResultAuthFailed, KindMissingSignature},
		{"missing timestamp", query(sig, "", "n"), good, ResultInvalidParam, KindMissingTimestamp},
		{"missing nonce", query(sig, vecTimestamp, ""), good, ResultInvalidParam, KindMissingNonce},
		{"nonce too long", query(sig, vecTimestamp, strings.Repeat("n", 129)), good, ResultInvalidParam, KindBadNonce},
		{"timestamp not digits", query(sig, "16805080666x8", "n"), good, ResultInvalidParam, KindBadTimestamp},
		{"timestamp 12 digits", query(sig, "168050806661", "n"), good, ResultInvalidParam, KindBadTimestamp},
		{"timestamp stale", query(sig, "1680508000000", "n"), good, ResultInvalidParam, KindStaleTimestamp},
		{"timestamp future", query(sig, "1680508166618", "n"), good, ResultInvalidParam, KindFutureTimestamp},
		{"signature short", query(sig[:62], vecTimestamp, "n"), good, ResultAuthFailed, KindMalformedSign},
		{"signature not hex", query(strings.Repeat("Z", 64), vecTimestamp, "n"), good, ResultAuthFailed, KindMalformedSign},
		{"signature mismatch", query(strings.Repeat("A", 64), vecTimestamp, "n"), good, ResultAuthFailed, KindSignatureMismatch},
		{"signature of other body", query(sig, vecTimestamp, "n"), strings.Replace(good, `"o"`, `"p"`, 1), ResultAuthFailed, KindSignatureMismatch},
		{"not JSON", nil, `activity=newInstance`, ResultInvalidParam, KindBadJSON},
		{"JSON array", nil, `[{"activity":"newInstance"}]`, ResultInvalidParam, KindBadJSON},
		{"trailing data", nil, good + `{}`, ResultInvalidParam, KindBadJSON},
		{"duplicate key", nil, `{"activity":"newInstance","orderId":"o","orderId":"p","orderLineId":"l","businessId":"b"}`, ResultInvalidParam, KindBadJSON},
		{"empty body", nil, ``, ResultInvalidParam, KindBadJSON},
		{"missing activity", nil, `{"orderId":"o"}`, ResultInvalidParam, KindMissingField},
		{"activity not a string", nil, `{"activity":1}`, ResultInvalidParam, KindBadValue},
		{"unknown activity", nil, `{"activity":"deleteEverything"}`, ResultInvalidParam, KindUnknownActivity},
		{"field wrong type", nil, `{"activity":"newInstance","businessId":"b","orderId":7,"orderLineId":"l"}`, ResultInvalidParam, KindBadValue},
		{"create missing orderId", nil, `{"activity":"newInstance","businessId":"b","orderLineId":"l"}`, ResultInvalidParam, KindMissingField},
		{"create missing businessId", nil, `{"activity":"newInstance","orderId":"o","orderLineId":"l"}`, ResultInvalidParam, KindMissingField},
		{"create orderId too long", nil, `{"activity":"newInstance","businessId":"b","orderId":"` + long + `","orderLineId":"l"}`, ResultInvalidParam, KindFieldTooLong},
		{"bad testFlag", nil, `{"activity":"newInstance","businessId":"b","orderId":"o","orderLineId":"l","testFlag":"2"}`, ResultInvalidParam, KindBadValue},
		{"query without ID", nil, `{"activity":"queryInstance","instanceId":""}`, ResultInvalidParam, KindMissingField},
		{"query empty ID in list", nil, `{"activity":"queryInstance","instanceId":"a,,b"}`, ResultInvalidParam, KindMissingField},
		{"query 101 IDs", nil, `{"activity":"queryInstance","instanceId":"` + ids101 + `"}`, ResultInvalidParam, KindFieldTooLong},
		{"refresh unknown scene", nil, `{"activity":"refreshInstance","scene":"FOREVER","orderId":"o","orderLineId":"l","instanceId":"i","expireTime":"20250101000000"}`, ResultInvalidParam, KindBadValue},
		{"refresh expireTime 12 digits", nil, `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"o","orderLineId":"l","instanceId":"i","expireTime":"202501010000"}`, ResultInvalidParam, KindBadValue},
		{"refresh expireTime not a date", nil, `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"o","orderLineId":"l","instanceId":"i","expireTime":"20251399000000"}`, ResultInvalidParam, KindBadValue},
		{"status FROZEN", nil, `{"activity":"updateInstanceStatus","instanceId":"i","status":"FROZEN"}`, ResultInvalidParam, KindBadValue},
		{"release without instance", nil, `{"activity":"releaseInstance"}`, ResultInvalidParam, KindMissingField},
		{"upgrade without order", nil, `{"activity":"upgradeInstance","instanceId":"i","orderLineId":"l"}`, ResultInvalidParam, KindMissingField},
		{"change check without sku", nil, `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":"p","productName":"n"}}`, ResultInvalidParam, KindMissingField},
		{"change check productInfo string", nil, `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"p"}`, ResultInvalidParam, KindBadValue},
		{"change check negative linearValue", nil, `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"productId":"p","skuCode":"s","productName":"n","linearValue":-1}}`, ResultInvalidParam, KindBadValue},
		{"orderNotify without testFlag", nil, `{"activity":"orderNotify","orderId":"o","orderLineId":"l"}`, ResultInvalidParam, KindMissingField},
	}
	if len(tests) < 25 {
		t.Fatalf("only %d cases", len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.query
			if q == nil {
				q = signed(tt.body, i)
			}
			err := accept(newTestVerifier(vecNow, vecKey), q, []byte(tt.body))
			if CodeOf(err) != tt.code || KindOf(err) != tt.kind {
				t.Fatalf("got %v (code %s, kind %s), want code %s kind %s", err, CodeOf(err), KindOf(err), tt.code, tt.kind)
			}
			if NewReply(err).ResultCode != tt.code {
				t.Fatalf("reply code %s", NewReply(err).ResultCode)
			}
		})
	}
}

func TestNoKeyIsInternal(t *testing.T) {
	v := NewVerifier(VerifierConfig{Clock: fixedClock(vecNow)})
	err := v.VerifyBasic(query(strings.Repeat("A", 64), vecTimestamp, "n"), []byte(vecBody))
	if CodeOf(err) != ResultInternalError || KindOf(err) != KindNoKey {
		t.Fatalf("got %v", err)
	}
}
