package koogallery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Names of the URL parameters and headers that carry request signatures.
const (
	ParamSignature = "signature"
	ParamTimestamp = "timestamp"
	ParamNonce     = "nonce"

	HeaderSign      = "x-sign"
	HeaderTimestamp = "x-timestamp"
	HeaderNonce     = "x-nonce"

	// HeaderBodySign is the reply signature header; KooGallery requires this exact spelling.
	HeaderBodySign = "Body-Sign"
	// HeaderAuthToken carries the V1 kit token.
	HeaderAuthToken = "authToken"

	signTypeHMAC = "HMAC-SHA256"
)

func hmacSum(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// basicMAC is the V2 basic signature as raw bytes:
// HMAC(key, key + nonce + timestamp + lowerhex(HMAC(key, body))).
func basicMAC(key, body []byte, nonce, timestamp string) []byte {
	inner := hmacSum(key, body)
	var hexInner [sha256.Size * 2]byte
	hex.Encode(hexInner[:], inner)
	return hmacSum(key, key, []byte(nonce), []byte(timestamp), hexInner[:])
}

// kitMAC is the kit signature as raw bytes: HMAC(key, key + nonce + timestamp + body).
func kitMAC(key, body []byte, nonce, timestamp string) []byte {
	return hmacSum(key, key, []byte(nonce), []byte(timestamp), body)
}

// SignBasic returns the V2 basic URL signature (§2.1) of body as upper-case hex, the case of
// every published example. body is signed as given: pass the bytes you send.
func SignBasic(key, body []byte, nonce, timestamp string) string {
	return strings.ToUpper(hex.EncodeToString(basicMAC(key, body, nonce, timestamp)))
}

// SignKit returns the kit x-sign value (§2.2) of body as upper-case hex.
func SignKit(key, body []byte, nonce, timestamp string) string {
	return strings.ToUpper(hex.EncodeToString(kitMAC(key, body, nonce, timestamp)))
}

// BasicQuery returns the signature, timestamp and nonce URL parameters of a basic call.
func BasicQuery(key, body []byte, nonce, timestamp string) url.Values {
	return url.Values{
		ParamSignature: {SignBasic(key, body, nonce, timestamp)},
		ParamTimestamp: {timestamp},
		ParamNonce:     {nonce},
	}
}

// SetKitHeaders sets the x-sign, x-timestamp and x-nonce headers of a kit call.
func SetKitHeaders(h http.Header, key, body []byte, nonce, timestamp string) {
	h.Set(HeaderSign, SignKit(key, body, nonce, timestamp))
	h.Set(HeaderTimestamp, timestamp)
	h.Set(HeaderNonce, nonce)
}

// BodySign returns the exact Body-Sign header value (§2.3) for a reply body:
// sign_type="HMAC-SHA256", signature="<base64(HMAC-SHA256(key, body))>".
func BodySign(key, body []byte) string {
	return `sign_type="` + signTypeHMAC + `", signature="` + base64.StdEncoding.EncodeToString(hmacSum(key, body)) + `"`
}

// ParseBodySign splits a Body-Sign header value into its sign type and base64 signature. Both
// values must be double-quoted, as KooGallery's checker demands.
func ParseBodySign(header string) (signType, signature string, err error) {
	fields := map[string]string{}
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return "", "", authError(KindMalformedSign, "Body-Sign is not of the form sign_type=\"…\", signature=\"…\"")
		}
		fields[strings.TrimSpace(k)] = v[1 : len(v)-1]
	}
	signType, signature = fields["sign_type"], fields["signature"]
	if signType == "" || signature == "" {
		return "", "", authError(KindMalformedSign, "Body-Sign lacks sign_type or signature")
	}
	return signType, signature, nil
}

// VerifyBodySign checks a reply's Body-Sign header against body with any of keys.
func VerifyBodySign(keys [][]byte, header string, body []byte) error {
	if header == "" {
		return authError(KindMissingSignature, "reply has no Body-Sign header")
	}
	signType, signature, err := ParseBodySign(header)
	if err != nil {
		return err
	}
	if signType != signTypeHMAC {
		return authError(KindMalformedSign, "Body-Sign sign_type is not HMAC-SHA256")
	}
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(got) != sha256.Size {
		return authError(KindMalformedSign, "Body-Sign signature is not base64 of 32 bytes")
	}
	for _, k := range keys {
		if hmac.Equal(got, hmacSum(k, body)) {
			return nil
		}
	}
	return authError(KindSignatureMismatch, "Body-Sign signature does not match the body")
}

// AuthToken returns the V1 authToken (§2.4): base64(HMAC-SHA256(key + timeStamp, "k1=v1&…"))
// over every parameter but authToken, sorted by name, with decoded values.
func AuthToken(key []byte, params url.Values) string {
	timeStamp := params.Get("timeStamp")
	names := make([]string, 0, len(params))
	for k := range params {
		if k != "authToken" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params.Get(k))
	}
	mac := hmacSum(append(append([]byte{}, key...), timeStamp...), []byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac)
}
