package koogallery

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

var vecNow = time.UnixMilli(1680508066618)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newTestVerifier(now time.Time, keys ...string) *Verifier {
	ks := StaticKeys{}
	for _, k := range keys {
		ks = append(ks, []byte(k))
	}
	return NewVerifier(VerifierConfig{BasicKeys: ks, KitKeys: ks, Clock: fixedClock(now)})
}

func query(sig, ts, nonce string) url.Values {
	q := url.Values{}
	if sig != "" {
		q.Set(ParamSignature, sig)
	}
	if ts != "" {
		q.Set(ParamTimestamp, ts)
	}
	if nonce != "" {
		q.Set(ParamNonce, nonce)
	}
	return q
}

func TestVerifyBasicSpecVector(t *testing.T) {
	v := newTestVerifier(vecNow, vecKey)
	sig := "cd8d59bb7fcf7574752b5eb0ed04b3acf4a759da53f24d30a79abe45c5d1ba25" // lower case on purpose
	if err := v.VerifyBasic(query(sig, vecTimestamp, vecNonce), []byte(vecBody)); err != nil {
		t.Fatalf("spec vector: %v", err)
	}
	if err := v.VerifyBasic(query(sig, vecTimestamp, vecNonce), []byte(vecBody)); KindOf(err) != KindReplayedNonce || CodeOf(err) != ResultAuthFailed {
		t.Fatalf("replay: got %v (%s)", err, CodeOf(err))
	}
}

func TestVerifyKitSpecVector(t *testing.T) {
	v := newTestVerifier(vecNow, vecKey)
	h := http.Header{}
	h.Set(HeaderSign, "ABB44B4C7A867A9F5EB8D9B7D9DF42E804FF66BC084EE412C49CFAFBFD5D8BE6")
	h.Set(HeaderTimestamp, vecTimestamp)
	h.Set(HeaderNonce, vecNonce)
	if err := v.VerifyKit(h, []byte(vecBody)); err != nil {
		t.Fatalf("kit vector: %v", err)
	}
}

func TestVerifyAuthTokenSpecVector(t *testing.T) {
	now := time.Date(2017, 7, 25, 2, 51, 13, 409e6, time.UTC)
	v := newTestVerifier(now, vecKey)
	params := url.Values{
		"activity": {"releaseInstance"}, "instanceId": {"03pf80c2bae96vc49b80b917bea776d7"},
		"orderId": {"CS1906666666ABCDE"}, "testFlag": {"1"}, "timeStamp": {"20170725025113409"},
	}
	if err := v.VerifyAuthToken(params, "zAgPuAkGAElyjJ3iJ9atwuOGabPcTrAvEEI3sWq6S8M="); err != nil {
		t.Fatalf("authToken vector: %v", err)
	}
	if err := v.VerifyAuthToken(params, "zAgPuAkGAElyjJ3iJ9atwuOGabPcTrAvEEI3sWq6S8M="); KindOf(err) != KindReplayedNonce {
		t.Fatalf("replayed token: %v", err)
	}
	params.Set("testFlag", "0")
	if err := v.VerifyAuthToken(params, "zAgPuAkGAElyjJ3iJ9atwuOGabPcTrAvEEI3sWq6S8M="); KindOf(err) != KindSignatureMismatch {
		t.Fatalf("tampered params: %v", err)
	}
}

func TestBodySignRoundTrip(t *testing.T) {
	key := []byte(vecKey)
	h := BodySign(key, []byte(vecReply))
	if err := VerifyBodySign([][]byte{[]byte("old"), key}, h, []byte(vecReply)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	bad := []struct{ name, header, body string }{
		{"missing", "", vecReply},
		{"unquoted", `sign_type=HMAC-SHA256, signature=abc`, vecReply},
		{"wrong type", strings.Replace(h, "HMAC-SHA256", "HMAC-SHA1", 1), vecReply},
		{"not base64", `sign_type="HMAC-SHA256", signature="!!!"`, vecReply},
		{"tampered body", h, vecReply + " "},
	}
	for _, tt := range bad {
		if err := VerifyBodySign([][]byte{key}, tt.header, []byte(tt.body)); CodeOf(err) != ResultAuthFailed {
			t.Errorf("%s: got %v", tt.name, err)
		}
	}
}

// TestTamper changes every byte of the body, the key, the nonce and the timestamp in turn: each
// change must fail verification.
func TestTamper(t *testing.T) {
	key, body := []byte(vecKey), []byte(vecBody)
	sign := map[string]func(k, b []byte, n, ts string) string{"basic": SignBasic, "kit": SignKit}
	for scheme, signer := range sign {
		verify := func(v *Verifier, sig, ts, nonce string, b []byte) error {
			if scheme == "basic" {
				return v.VerifyBasic(query(sig, ts, nonce), b)
			}
			h := http.Header{}
			h.Set(HeaderSign, sig)
			h.Set(HeaderTimestamp, ts)
			h.Set(HeaderNonce, nonce)
			return v.VerifyKit(h, b)
		}
		sig := signer(key, body, vecNonce, vecTimestamp)
		for i := range body {
			b := append([]byte(nil), body...)
			b[i] ^= 0x01
			if err := verify(newTestVerifier(vecNow, vecKey), sig, vecTimestamp, vecNonce, b); err == nil {
				t.Fatalf("%s: flipped body byte %d verified", scheme, i)
			}
		}
		if err := verify(newTestVerifier(vecNow, "testAccessKey124"), sig, vecTimestamp, vecNonce, body); CodeOf(err) != ResultAuthFailed {
			t.Errorf("%s: other key: %v", scheme, err)
		}
		if err := verify(newTestVerifier(vecNow, vecKey), sig, vecTimestamp, "0"+vecNonce[1:], body); KindOf(err) != KindSignatureMismatch {
			t.Errorf("%s: other nonce: %v", scheme, err)
		}
		if err := verify(newTestVerifier(vecNow, vecKey), sig, "1680508066619", vecNonce, body); KindOf(err) != KindSignatureMismatch {
			t.Errorf("%s: other timestamp: %v", scheme, err)
		}
		if err := verify(newTestVerifier(vecNow, vecKey), sig, vecTimestamp, vecNonce, body); err != nil {
			t.Errorf("%s: untouched: %v", scheme, err)
		}
	}
}

func TestCanonicalFallback(t *testing.T) {
	// KooGallery signs the canonical form; the body on the wire is reordered, spaced and carries
	// a null. The nested object keeps its received order in the canonical form.
	wire := `{ "testFlag":"1", "productInfo": {"skuCode":"s","productId":"p","productName":"中文"}, "instanceId":"i", "extra":null, "activity":"changeInstanceCheck" }`
	want := `{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"skuCode":"s","productId":"p","productName":"中文"},"testFlag":"1"}`
	got, err := Canonical([]byte(wire))
	if err != nil || string(got) != want {
		t.Fatalf("canonical:\n got %s (%v)\nwant %s", got, err, want)
	}
	sig := SignBasic([]byte(vecKey), []byte(want), vecNonce, vecTimestamp)
	if err := newTestVerifier(vecNow, vecKey).VerifyBasic(query(sig, vecTimestamp, vecNonce), []byte(wire)); err != nil {
		t.Fatalf("canonical fallback: %v", err)
	}
}

func TestCanonicalEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":"\u4e2d","a":"x\/y"}`, `{"a":"x/y","b":"中"}`},
		{`{"a":"tab\tnl\n\u0001"}`, `{"a":"tab\tnl\n\u0001"}`},
		{`{"a":[1, 2.50, true, null, {"z":1,"y":2}]}`, `{"a":[1,2.50,true,null,{"z":1,"y":2}]}`},
		{`{"a":"<&>"}`, `{"a":"<&>"}`},
	}
	for _, tt := range tests {
		got, err := Canonical([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	var mu sync.Mutex
	keys := [][]byte{[]byte("new-key"), []byte("old-key")}
	v := NewVerifier(VerifierConfig{BasicKeys: KeyFunc(func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return keys
	}), Clock: fixedClock(vecNow)})
	body := []byte(vecBody)
	for i, k := range []string{"new-key", "old-key"} {
		nonce := fmt.Sprintf("n%d", i)
		if err := v.VerifyBasic(query(SignBasic([]byte(k), body, nonce, vecTimestamp), vecTimestamp, nonce), body); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	mu.Lock()
	keys = keys[:1]
	mu.Unlock()
	if err := v.VerifyBasic(query(SignBasic([]byte("old-key"), body, "n3", vecTimestamp), vecTimestamp, "n3"), body); KindOf(err) != KindSignatureMismatch {
		t.Errorf("retired key accepted: %v", err)
	}
}

func TestTimestampWindow(t *testing.T) {
	body := []byte(vecBody)
	tests := []struct {
		name string
		ts   time.Time
		secs bool
		kind Kind
	}{
		{"now", vecNow, false, ""},
		{"59s old", vecNow.Add(-59 * time.Second), false, ""},
		{"59s ahead", vecNow.Add(59 * time.Second), false, ""},
		{"61s old", vecNow.Add(-61 * time.Second), false, KindStaleTimestamp},
		{"61s ahead", vecNow.Add(61 * time.Second), false, KindFutureTimestamp},
		{"seconds", vecNow.Add(-time.Second), true, ""},
		{"seconds stale", vecNow.Add(-2 * time.Minute), true, KindStaleTimestamp},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := Timestamp(tt.ts)
			if tt.secs {
				ts = fmt.Sprint(tt.ts.Unix())
			}
			nonce := fmt.Sprint("nonce", i)
			err := newTestVerifier(vecNow, vecKey).VerifyBasic(query(SignBasic([]byte(vecKey), body, nonce, ts), ts, nonce), body)
			if KindOf(err) != tt.kind || (tt.kind == "") != (err == nil) {
				t.Fatalf("got %v, want kind %q", err, tt.kind)
			}
		})
	}
}

func TestNonceCache(t *testing.T) {
	now := vecNow
	v := NewVerifier(VerifierConfig{BasicKeys: StaticKeys{[]byte(vecKey)}, Clock: func() time.Time { return now }, MaxNonces: 2})
	body := []byte(vecBody)
	send := func(nonce string) error {
		ts := Timestamp(now)
		return v.VerifyBasic(query(SignBasic([]byte(vecKey), body, nonce, ts), ts, nonce), body)
	}
	if err := send("a"); err != nil {
		t.Fatal(err)
	}
	if err := send("b"); err != nil {
		t.Fatal(err)
	}
	if err := send("c"); KindOf(err) != KindReplayCacheFull || CodeOf(err) != ResultInternalError {
		t.Fatalf("full cache: %v", err)
	}
	now = now.Add(2*DefaultWindow + time.Millisecond)
	if err := send("a"); err != nil {
		t.Fatalf("after TTL the nonce is free again: %v", err)
	}
	if n := v.nonces.len(); n != 1 {
		t.Fatalf("expired nonces not swept: %d left", n)
	}
}

func TestNonceCacheConcurrent(t *testing.T) {
	v := newTestVerifier(vecNow, vecKey)
	body := []byte(vecBody)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				nonce := fmt.Sprint("shared", j)
				if v.VerifyBasic(query(SignBasic([]byte(vecKey), body, nonce, vecTimestamp), vecTimestamp, nonce), body) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if accepted != 50 {
		t.Fatalf("each nonce must be accepted exactly once, accepted %d of 50", accepted)
	}
}

// TestErrorsNeverLeak checks that no failure message carries the key or the full signature.
func TestErrorsNeverLeak(t *testing.T) {
	body := []byte(vecBody)
	sig := SignBasic([]byte(vecKey), body, vecNonce, vecTimestamp)
	v := newTestVerifier(vecNow, "another-secret-key")
	err := v.VerifyBasic(query(sig, vecTimestamp, vecNonce), body)
	for _, s := range []string{vecKey, "another-secret-key", sig, strings.ToLower(sig)} {
		if err == nil || strings.Contains(err.Error(), s) || strings.Contains(NewReply(err).ResultMsg, s) {
			t.Fatalf("error %v leaks a secret", err)
		}
	}
}
