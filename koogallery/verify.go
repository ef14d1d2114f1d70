package koogallery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"time"
)

// KeySource yields the keys a signature may be made with, current key first. It is asked on
// every request, so keys can change at runtime (a reloaded Secret) and two keys can be accepted
// while KooGallery's binding is being rotated.
type KeySource interface {
	Keys() [][]byte
}

// StaticKeys is a fixed KeySource.
type StaticKeys [][]byte

// Keys implements KeySource.
func (k StaticKeys) Keys() [][]byte { return k }

// KeyFunc adapts a function to KeySource.
type KeyFunc func() [][]byte

// Keys implements KeySource.
func (f KeyFunc) Keys() [][]byte { return f() }

// Defaults of VerifierConfig.
const (
	DefaultWindow    = 60 * time.Second
	DefaultMaxNonces = 100_000
	// MaxNonceLength bounds the nonce a caller may send (examples are 32 or 64 characters) so that
	// the replay cache's memory bound holds in bytes, not only in entries.
	MaxNonceLength = 128
	// DefaultMaxConcurrent verifications run at once: each computes MACs over a body of up to the
	// endpoint's limit, so the bound caps the CPU that unsigned traffic can take.
	DefaultMaxConcurrent = 4
	// DefaultSlotWait is how long a verification waits for a free slot before it is refused.
	DefaultSlotWait = time.Second
)

// Kinds of the refusals that come before any MAC is computed.
const (
	// KindRepeatedParam: a signature, timestamp or nonce parameter (or header), or any V1
	// parameter, appears more than once. Only one value can be the signed one.
	KindRepeatedParam Kind = "repeated_parameter"
	// KindBusy: every verification slot stayed taken for the slot wait (000005, retried by
	// KooGallery).
	KindBusy Kind = "busy"
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// BasicKeys verify basic-interface signatures and V1 authTokens.
	BasicKeys KeySource
	// KitKeys verify kit signatures. KooGallery binds a different key to each interface type,
	// so they are separate from BasicKeys.
	KitKeys KeySource
	// Clock returns now; time.Now when nil.
	Clock func() time.Time
	// Window is how far a timestamp may be from now, in either direction. Default 60 s.
	Window time.Duration
	// NonceTTL is how long an accepted nonce is remembered. It is raised to 2×Window when smaller,
	// because a timestamp up to Window in the future stays acceptable until now + 2×Window.
	NonceTTL time.Duration
	// MaxNonces bounds the replay cache. Default 100 000 (about 800 calls/s sustained at the
	// default TTL, far above KooGallery's rate).
	MaxNonces int
	// MaxConcurrent bounds the verifications that compute MACs at once (default 4); SlotWait is
	// how long one waits for a slot before it is refused with 000005 (default 1 s).
	MaxConcurrent int
	SlotWait      time.Duration
}

// Verifier checks the signatures of requests from KooGallery. It is safe for concurrent use.
type Verifier struct {
	basic, kit KeySource
	now        func() time.Time
	window     time.Duration
	ttl        time.Duration
	nonces     *nonceCache
	slots      chan struct{}
	slotWait   time.Duration
}

// NewVerifier returns a Verifier; zero fields of cfg take their defaults.
func NewVerifier(cfg VerifierConfig) *Verifier {
	v := &Verifier{basic: cfg.BasicKeys, kit: cfg.KitKeys, now: cfg.Clock, window: cfg.Window, ttl: cfg.NonceTTL}
	if v.now == nil {
		v.now = time.Now
	}
	if v.window <= 0 {
		v.window = DefaultWindow
	}
	if v.ttl < 2*v.window {
		v.ttl = 2 * v.window
	}
	maxNonces := cfg.MaxNonces
	if maxNonces <= 0 {
		maxNonces = DefaultMaxNonces
	}
	v.nonces = newNonceCache(maxNonces)
	slots := cfg.MaxConcurrent
	if slots <= 0 {
		slots = DefaultMaxConcurrent
	}
	v.slots = make(chan struct{}, slots)
	v.slotWait = cfg.SlotWait
	if v.slotWait <= 0 {
		v.slotWait = DefaultSlotWait
	}
	return v
}

// scheme is a request signature split in three, so that a body can be streamed through it.
type scheme int

const (
	basicScheme scheme = iota // HMAC(key, key + nonce + timestamp + lowerhex(HMAC(key, body)))
	kitScheme                 // HMAC(key, key + nonce + timestamp + body)
)

// start returns the hash the body is written to.
func (s scheme) start(key []byte, nonce, timestamp string) hash.Hash {
	h := hmac.New(sha256.New, key)
	if s == kitScheme {
		h.Write(key)
		h.Write([]byte(nonce))
		h.Write([]byte(timestamp))
	}
	return h
}

// finish returns the signature once the whole body has been written to h.
func (s scheme) finish(key []byte, h hash.Hash, nonce, timestamp string) []byte {
	if s == kitScheme {
		return h.Sum(nil)
	}
	var hexInner [sha256.Size * 2]byte
	hex.Encode(hexInner[:], h.Sum(nil))
	return hmacSum(key, key, []byte(nonce), []byte(timestamp), hexInner[:])
}

// VerifyBasic verifies a basic-interface request: the signature, timestamp and nonce URL
// parameters against the body (§2.1). The raw body is tried first, then its canonical form. The
// nonce is recorded only once the signature holds, so unsigned traffic cannot fill the cache or
// burn a nonce KooGallery is about to use.
//
// What an unsigned request can cost is bounded: the body is read twice at most (raw, then the
// canonical form streamed into one hash per key, see writeCanonical), in memory of a fixed size,
// and at most MaxConcurrent verifications run at once.
func (v *Verifier) VerifyBasic(query url.Values, body []byte) error {
	for _, p := range []string{ParamSignature, ParamTimestamp, ParamNonce} {
		if len(query[p]) > 1 {
			return paramError(KindRepeatedParam, p+" appears more than once")
		}
	}
	return v.verify("basic:", v.basic, basicScheme, query.Get(ParamSignature), query.Get(ParamTimestamp), query.Get(ParamNonce), body)
}

// VerifyKit verifies a kit request: the x-sign, x-timestamp and x-nonce headers (§2.2).
func (v *Verifier) VerifyKit(header http.Header, body []byte) error {
	for _, h := range []string{HeaderSign, HeaderTimestamp, HeaderNonce} {
		if len(header.Values(h)) > 1 {
			return paramError(KindRepeatedParam, h+" appears more than once")
		}
	}
	return v.verify("kit:", v.kit, kitScheme, header.Get(HeaderSign), header.Get(HeaderTimestamp), header.Get(HeaderNonce), body)
}

func (v *Verifier) verify(scope string, keys KeySource, s scheme, sig, ts, nonce string, body []byte) error {
	if sig == "" {
		return authError(KindMissingSignature, "signature is missing")
	}
	if err := checkNonceFormat(nonce); err != nil {
		return err
	}
	if ts == "" {
		return paramError(KindMissingTimestamp, "timestamp is missing")
	}
	at, err := ParseTimestamp(ts)
	if err != nil {
		return err
	}
	now := v.now()
	if err := v.checkWindow(now, at); err != nil {
		return err
	}
	want, err := hex.DecodeString(sig)
	if err != nil || len(want) != 32 {
		return authError(KindMalformedSign, "signature is not 64 hex characters")
	}
	ks, err := keyList(keys)
	if err != nil {
		return err
	}
	if !v.acquire() {
		return newError(ResultInternalError, KindBusy, "too many requests are being verified, retry later")
	}
	ok := matchAny(ks, s, body, nonce, ts, want)
	<-v.slots
	if !ok {
		return authError(KindSignatureMismatch, "signature does not match")
	}
	return v.admit(scope+nonce, now)
}

// acquire takes a verification slot, waiting at most the slot wait.
func (v *Verifier) acquire() bool {
	select {
	case v.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(v.slotWait)
	defer t.Stop()
	select {
	case v.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func checkNonceFormat(nonce string) error {
	if nonce == "" {
		return paramError(KindMissingNonce, "nonce is missing")
	}
	if len(nonce) > MaxNonceLength {
		return paramError(KindBadNonce, "nonce is longer than 128 characters")
	}
	return nil
}

func keyList(keys KeySource) ([][]byte, error) {
	var ks [][]byte
	if keys != nil {
		ks = keys.Keys()
	}
	if len(ks) == 0 {
		return nil, newError(ResultInternalError, KindNoKey, "no verification key is configured")
	}
	return ks, nil
}

// matchAny tries the raw body with every key, then the canonical form, comparing in constant
// time. The canonical form is streamed into one hash per key in a single pass; a body it refuses
// (not one object, nested deeper than 32 levels, too many top-level members) only had the raw
// chance.
func matchAny(keys [][]byte, s scheme, body []byte, nonce, ts string, want []byte) bool {
	hs := make([]hash.Hash, len(keys))
	for i, k := range keys {
		hs[i] = s.start(k, nonce, ts)
		_, _ = hs[i].Write(body)
		if hmac.Equal(s.finish(k, hs[i], nonce, ts), want) {
			return true
		}
	}
	for i, k := range keys {
		hs[i] = s.start(k, nonce, ts)
	}
	err := writeCanonical(body, func(p []byte) {
		for _, h := range hs {
			h.Write(p)
		}
	})
	if err != nil {
		return false
	}
	for i, k := range keys {
		if hmac.Equal(s.finish(k, hs[i], nonce, ts), want) {
			return true
		}
	}
	return false
}

func (v *Verifier) checkWindow(now, at time.Time) error {
	switch d := now.Sub(at); {
	case d > v.window:
		return paramError(KindStaleTimestamp, "timestamp is older than the accepted window")
	case d < -v.window:
		return paramError(KindFutureTimestamp, "timestamp is further in the future than the accepted window")
	}
	return nil
}

func (v *Verifier) admit(key string, now time.Time) error {
	switch v.nonces.admit(key, now, now.Add(v.ttl)) {
	case replayed:
		return authError(KindReplayedNonce, "nonce was already used")
	case full:
		return newError(ResultInternalError, KindReplayCacheFull, "replay cache is full, retry later")
	}
	return nil
}

// VerifyAuthToken verifies a V1 call (§2.4): token against params (every parameter but authToken,
// including timeStamp, a 17-digit UTC time that must be inside the window) with the basic keys.
// A parameter given twice is refused: only one of its values could be the signed one. V1 has no
// nonce, so the token itself is remembered to refuse a replay, by its decoded bytes: base64
// decoding skips line breaks, and a replay with one inserted must not pass as a new token.
func (v *Verifier) VerifyAuthToken(params url.Values, token string) error {
	if token == "" {
		return authError(KindMissingSignature, "authToken is missing")
	}
	for _, vs := range params {
		if len(vs) > 1 {
			return paramError(KindRepeatedParam, "a parameter appears more than once")
		}
	}
	ts := params.Get("timeStamp")
	if ts == "" {
		return paramError(KindMissingTimestamp, "timeStamp is missing")
	}
	if len(ts) != 17 {
		return paramError(KindBadTimestamp, "timeStamp must be yyyyMMddHHmmssSSS")
	}
	at, err := parseDigits(ts, time.UTC)
	if err != nil {
		return paramError(KindBadTimestamp, "timeStamp must be yyyyMMddHHmmssSSS")
	}
	now := v.now()
	if err := v.checkWindow(now, at); err != nil {
		return err
	}
	want, err := base64.StdEncoding.DecodeString(token)
	if err != nil || len(want) != 32 {
		return authError(KindMalformedSign, "authToken is not base64 of 32 bytes")
	}
	ks, err := keyList(v.basic)
	if err != nil {
		return err
	}
	ok := false
	for _, k := range ks {
		got, _ := base64.StdEncoding.DecodeString(AuthToken(k, params))
		ok = ok || hmac.Equal(got, want)
	}
	if !ok {
		return authError(KindSignatureMismatch, "authToken does not match")
	}
	return v.admit("v1:"+string(want), now)
}
