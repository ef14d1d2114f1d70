package koogallery

import (
	"fmt"
	"net/http"
	"testing"
)

func BenchmarkSignBasic(b *testing.B) {
	key, body := []byte(vecKey), []byte(vecBody)
	b.ReportAllocs()
	for b.Loop() {
		SignBasic(key, body, vecNonce, vecTimestamp)
	}
}

func BenchmarkSignKit(b *testing.B) {
	key, body := []byte(vecKey), []byte(vecBody)
	b.ReportAllocs()
	for b.Loop() {
		SignKit(key, body, vecNonce, vecTimestamp)
	}
}

func BenchmarkBodySign(b *testing.B) {
	key, body := []byte(vecKey), []byte(vecReply)
	b.ReportAllocs()
	for b.Loop() {
		BodySign(key, body)
	}
}

// benchVerify measures one verification per request with unique nonces, as in production; the
// nonce cache is large enough to hold them all.
func benchVerify(b *testing.B, body []byte, signed []byte, keys ...string) {
	v := NewVerifier(VerifierConfig{BasicKeys: keysOf(keys), Clock: fixedClock(vecNow), MaxNonces: 1 << 30})
	nonces := make([]string, 0, 1<<16)
	for i := 0; i < cap(nonces); i++ {
		nonces = append(nonces, fmt.Sprintf("%064X", i))
	}
	queries := make([]map[string][]string, len(nonces))
	for i, n := range nonces {
		queries[i] = query(SignBasic([]byte(keys[len(keys)-1]), signed, n, vecTimestamp), vecTimestamp, n)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(queries) {
			b.StopTimer()
			v = NewVerifier(VerifierConfig{BasicKeys: keysOf(keys), Clock: fixedClock(vecNow), MaxNonces: 1 << 30})
			i = 0
			b.StartTimer()
		}
		if err := v.VerifyBasic(queries[i], body); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func keysOf(keys []string) StaticKeys {
	ks := StaticKeys{}
	for _, k := range keys {
		ks = append(ks, []byte(k))
	}
	return ks
}

func BenchmarkVerifyBasic(b *testing.B) {
	benchVerify(b, []byte(vecBody), []byte(vecBody), vecKey)
}

// BenchmarkVerifyBasicRotated is the rotation worst case: the previous key signed the request.
func BenchmarkVerifyBasicRotated(b *testing.B) {
	benchVerify(b, []byte(vecBody), []byte(vecBody), "new-key", vecKey)
}

// BenchmarkVerifyBasicCanonical is the slow path: the raw body fails and the canonical form is
// computed and checked.
func BenchmarkVerifyBasicCanonical(b *testing.B) {
	wire := []byte(`{ "testFlag":"1", "orderLineId":"CS2211181819B4LVS-000001", "orderId":"CS2211181819B4LVS", "businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8", "activity":"newInstance" }`)
	benchVerify(b, wire, []byte(vecBody), vecKey)
}

func BenchmarkVerifyKit(b *testing.B) {
	v := NewVerifier(VerifierConfig{KitKeys: StaticKeys{[]byte(vecKey)}, Clock: fixedClock(vecNow), MaxNonces: 1 << 30})
	body := []byte(vecBody)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		n := fmt.Sprintf("%064X", i)
		h := http.Header{}
		SetKitHeaders(h, []byte(vecKey), body, n, vecTimestamp)
		i++
		b.StartTimer()
		if err := v.VerifyKit(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBasicRequest(b *testing.B) {
	body := []byte(vecBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBasicRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalReply(b *testing.B) {
	r := QueryInstanceReply{Reply: NewReply(nil), Info: []InstanceInfo{{InstanceID: "i", AppInfo: &AppInfo{FrontEndURL: "https://t.example.com/", Memo: "租户已就绪"}}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalReply(r); err != nil {
			b.Fatal(err)
		}
	}
}
