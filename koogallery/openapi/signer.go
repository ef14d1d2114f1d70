package openapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// APIG signing constants (koogallery-openapi.md §5).
const (
	SignAlgorithm   = "SDK-HMAC-SHA256"
	HeaderSdkDate   = "X-Sdk-Date"
	SdkDateLayout   = "20060102T150405Z"
	emptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// signedHeaderNames are the headers the client signs when present: APIG requires only
// X-Sdk-Date; host and content-type are signed because Huawei's own signers sign them.
var signedHeaderNames = []string{"content-type", "host", "x-sdk-date"}

// Sign adds X-Sdk-Date and the Authorization header to req for body (nil for a GET).
func Sign(req *http.Request, body []byte, ak, sk string, now time.Time) {
	req.Header.Set(HeaderSdkDate, now.UTC().Format(SdkDateLayout))
	var names []string
	for _, n := range signedHeaderNames {
		if n == "host" || req.Header.Get(n) != "" {
			names = append(names, n)
		}
	}
	sig := signature(req, body, names, sk)
	req.Header.Set("Authorization", fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s",
		SignAlgorithm, ak, strings.Join(names, ";"), sig))
}

func signature(req *http.Request, body []byte, names []string, sk string) string {
	sts := StringToSign(CanonicalRequest(req, body, names), req.Header.Get(HeaderSdkDate))
	m := hmac.New(sha256.New, []byte(sk))
	m.Write([]byte(sts))
	return hex.EncodeToString(m.Sum(nil))
}

// StringToSign is "SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex sha256(canonical request)>".
func StringToSign(canonicalRequest, sdkDate string) string {
	h := sha256.Sum256([]byte(canonicalRequest))
	return SignAlgorithm + "\n" + sdkDate + "\n" + hex.EncodeToString(h[:])
}

// CanonicalRequest builds the APIG canonical request of req over the given lower-case signed
// header names (sorted by the caller or not; they are sorted here).
func CanonicalRequest(req *http.Request, body []byte, names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	var b strings.Builder
	b.WriteString(strings.ToUpper(req.Method))
	b.WriteByte('\n')
	b.WriteString(canonicalURI(req.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(req.URL.RawQuery))
	b.WriteByte('\n')
	for _, n := range sorted {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strings.TrimSpace(headerValue(req, n)))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(sorted, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash(req, body))
	return b.String()
}

func headerValue(req *http.Request, name string) string {
	if name == "host" {
		if req.Host != "" {
			return req.Host
		}
		return req.URL.Host
	}
	return req.Header.Get(name)
}

func payloadHash(req *http.Request, body []byte) string {
	if v := req.Header.Get("X-Sdk-Content-Sha256"); v != "" {
		return v
	}
	if len(body) == 0 {
		return emptyBodySHA256
	}
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// canonicalURI percent-encodes each decoded path segment and ends the path with "/", which the
// request line itself does not carry.
func canonicalURI(u *url.URL) string {
	path, err := url.PathUnescape(u.EscapedPath())
	if err != nil {
		path = u.Path
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = escape(s)
	}
	out := strings.Join(segs, "/")
	if !strings.HasSuffix(out, "/") {
		out += "/"
	}
	return out
}

// canonicalQuery sorts decoded parameters by key, then value, and encodes them with escape.
func canonicalQuery(raw string) string {
	vals, err := url.ParseQuery(raw)
	if err != nil || len(vals) == 0 {
		return ""
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), vals[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, escape(k)+"="+escape(v))
		}
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes every byte outside the unreserved set A–Z a–z 0–9 - _ . ~ (so a space
// is %20, never +).
func escape(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0xF])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// Authorization is a parsed APIG Authorization header.
type Authorization struct {
	Access        string
	SignedHeaders []string
	Signature     string
}

// ParseAuthorization parses "SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…".
func ParseAuthorization(h string) (Authorization, error) {
	rest, ok := strings.CutPrefix(h, SignAlgorithm+" ")
	if !ok {
		return Authorization{}, errors.New("authorization is not SDK-HMAC-SHA256")
	}
	var a Authorization
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Access":
			a.Access = v
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		}
	}
	if a.Access == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return Authorization{}, errors.New("authorization lacks Access, SignedHeaders or Signature")
	}
	return a, nil
}

// VerifyRequest checks an APIG-signed request against the expected AK/SK: the access key, that
// host and x-sdk-date are signed, the date within skew of now, and the signature. Errors never
// carry the signature or the secret.
func VerifyRequest(req *http.Request, body []byte, ak, sk string, now time.Time, skew time.Duration) error {
	a, err := ParseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(a.Access), []byte(ak)) {
		return errors.New("unknown access key")
	}
	if !contains(a.SignedHeaders, "x-sdk-date") || !contains(a.SignedHeaders, "host") {
		return errors.New("host and x-sdk-date must be signed")
	}
	at, err := time.Parse(SdkDateLayout, req.Header.Get(HeaderSdkDate))
	if err != nil {
		return errors.New("x-sdk-date is missing or malformed")
	}
	if d := now.Sub(at); d > skew || d < -skew {
		return errors.New("x-sdk-date is outside the accepted clock skew")
	}
	want := signature(req, body, a.SignedHeaders, sk)
	if !hmac.Equal([]byte(strings.ToLower(a.Signature)), []byte(want)) {
		return errors.New("signature does not match")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
