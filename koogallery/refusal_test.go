package koogallery

import (
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Every signed value must be the only one of its name: with two, the verifier signs one and some
// other reader may take the other.
func TestRepeatedParametersRefused(t *testing.T) {
	body := []byte(vecBody)
	good := query(SignBasic([]byte(vecKey), body, vecNonce, vecTimestamp), vecTimestamp, vecNonce)
	for _, p := range []string{ParamSignature, ParamTimestamp, ParamNonce} {
		q := url.Values{}
		for k, vs := range good {
			q[k] = append([]string(nil), vs...)
		}
		q.Add(p, q.Get(p))
		err := newTestVerifier(vecNow, vecKey).VerifyBasic(q, body)
		if KindOf(err) != KindRepeatedParam || CodeOf(err) != ResultInvalidParam {
			t.Errorf("basic with %s twice: %v (%s)", p, err, CodeOf(err))
		}
	}
	for _, name := range []string{HeaderSign, HeaderTimestamp, HeaderNonce} {
		h := http.Header{}
		SetKitHeaders(h, []byte(vecKey), body, vecNonce, vecTimestamp)
		h.Add(name, h.Get(name))
		if err := newTestVerifier(vecNow, vecKey).VerifyKit(h, body); KindOf(err) != KindRepeatedParam {
			t.Errorf("kit with %s twice: %v", name, err)
		}
	}

	now := time.Date(2017, 7, 25, 2, 51, 13, 409e6, time.UTC)
	params := url.Values{
		"activity": {"releaseInstance"}, "instanceId": {"03pf80c2bae96vc49b80b917bea776d7"},
		"orderId": {"CS1906666666ABCDE"}, "testFlag": {"1"}, "timeStamp": {"20170725025113409"},
	}
	// Signed over the first instanceId; a second one rides along unsigned.
	params.Add("instanceId", "another-instance")
	err := newTestVerifier(now, vecKey).VerifyAuthToken(params, "zAgPuAkGAElyjJ3iJ9atwuOGabPcTrAvEEI3sWq6S8M=")
	if KindOf(err) != KindRepeatedParam || CodeOf(err) != ResultInvalidParam {
		t.Errorf("V1 with instanceId twice: %v", err)
	}
}

// Base64 decoding skips line breaks, so the same token with one inserted is the same signature:
// the replay cache must know it.
func TestAuthTokenReplayWithLineBreaks(t *testing.T) {
	now := time.Date(2017, 7, 25, 2, 51, 13, 409e6, time.UTC)
	v := newTestVerifier(now, vecKey)
	params := url.Values{
		"activity": {"releaseInstance"}, "instanceId": {"03pf80c2bae96vc49b80b917bea776d7"},
		"orderId": {"CS1906666666ABCDE"}, "testFlag": {"1"}, "timeStamp": {"20170725025113409"},
	}
	const token = "zAgPuAkGAElyjJ3iJ9atwuOGabPcTrAvEEI3sWq6S8M="
	if err := v.VerifyAuthToken(params, token); err != nil {
		t.Fatalf("first call: %v", err)
	}
	for _, replay := range []string{token[:10] + "\n" + token[10:], "\r\n" + token, token[:43] + "\r" + token[43:]} {
		if err := v.VerifyAuthToken(params, replay); KindOf(err) != KindReplayedNonce {
			t.Errorf("replay %q: %v", replay, err)
		}
	}
}

// A request that finds every verification slot taken for the slot wait is refused 000005, and
// passes once a slot is free.
func TestVerifierBusy(t *testing.T) {
	v := NewVerifier(VerifierConfig{BasicKeys: StaticKeys{[]byte(vecKey)}, Clock: fixedClock(vecNow),
		MaxConcurrent: 1, SlotWait: 20 * time.Millisecond})
	body := []byte(vecBody)
	v.slots <- struct{}{}
	err := v.VerifyBasic(query(SignBasic([]byte(vecKey), body, vecNonce, vecTimestamp), vecTimestamp, vecNonce), body)
	if KindOf(err) != KindBusy || CodeOf(err) != ResultInternalError {
		t.Fatalf("all slots taken: %v (%s)", err, CodeOf(err))
	}
	<-v.slots
	if err := v.VerifyBasic(query(SignBasic([]byte(vecKey), body, vecNonce, vecTimestamp), vecTimestamp, vecNonce), body); err != nil {
		t.Fatalf("a slot free: %v", err)
	}
	// The refusals that need no MAC do not wait for a slot.
	v.slots <- struct{}{}
	if err := v.VerifyBasic(query("", vecTimestamp, vecNonce), body); KindOf(err) != KindMissingSignature {
		t.Errorf("missing signature while busy: %v", err)
	}
}

// maxRefusalAlloc is what refusing one unsigned body may allocate, whatever its size and shape:
// the hashes, the table of top-level members and their names, a write buffer.
const maxRefusalAlloc = 64 << 10

// Refusing the largest unsigned body of every shape allocates a small fixed amount, not a
// multiple of the body.
func TestUnsignedRefusalAllocatesLittle(t *testing.T) {
	keys := StaticKeys{[]byte(vecKey), []byte("previous-key")}
	v := NewVerifier(VerifierConfig{BasicKeys: keys, KitKeys: keys, Clock: fixedClock(vecNow)})
	for _, shape := range unsignedShapes {
		body := shape.fill(benchKitLimit)
		h := http.Header{}
		h.Set(HeaderSign, strings.Repeat("AB", 32))
		h.Set(HeaderTimestamp, vecTimestamp)
		h.Set(HeaderNonce, vecNonce)
		var err error
		alloc := allocated(func() { err = v.VerifyKit(h, body) })
		if KindOf(err) != KindSignatureMismatch {
			t.Fatalf("%s: %v", shape.name, err)
		}
		if alloc > maxRefusalAlloc {
			t.Errorf("%s: refusing %d bytes allocated %d bytes, more than %d", shape.name, len(body), alloc, maxRefusalAlloc)
		}
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
