package koogallery

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
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
}

// Verifier checks the signatures of requests from KooGallery. It is safe for concurrent use.
type Verifier struct {
	basic, kit KeySource
	now        func() time.Time
	window     time.Duration
	ttl        time.Duration
	nonces     *nonceCache
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
	return v
}

type macFunc func(key, body []byte, nonce, timestamp string) []byte

// VerifyBasic verifies a basic-interface request: the signature, timestamp and nonce URL
// parameters against the body (§2.1). The raw body is tried first, then its canonical form. The
// nonce is recorded only once the signature holds, so unsigned traffic cannot fill the cache or
// burn a nonce KooGallery is about to use.
func (v *Verifier) VerifyBasic(query url.Values, body []byte) error {
	return v.verify("basic:", v.basic, basicMAC, query.Get(ParamSignature), query.Get(ParamTimestamp), query.Get(ParamNonce), body)
}

// VerifyKit verifies a kit request: the x-sign, x-timestamp and x-nonce headers (§2.2).
func (v *Verifier) VerifyKit(header http.Header, body []byte) error {
	return v.verify("kit:", v.kit, kitMAC, header.Get(HeaderSign), header.Get(HeaderTimestamp), header.Get(HeaderNonce), body)
}

func (v *Verifier) verify(scope string, keys KeySource, mac macFunc, sig, ts, nonce string, body []byte) error {
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
	if !matchAny(ks, mac, body, nonce, ts, want) {
		return authError(KindSignatureMismatch, "signature does not match")
	}
	return v.admit(scope+nonce, now)
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

// matchAny tries the raw body with every key, then the canonical form, comparing in constant time.
func matchAny(keys [][]byte, mac macFunc, body []byte, nonce, ts string, want []byte) bool {
	for _, k := range keys {
		if hmac.Equal(mac(k, body, nonce, ts), want) {
			return true
		}
	}
	canon, err := Canonical(body)
	if err != nil || bytes.Equal(canon, body) {
		return false
	}
	for _, k := range keys {
		if hmac.Equal(mac(k, canon, nonce, ts), want) {
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
// V1 has no nonce, so the token itself is remembered to refuse an exact replay.
func (v *Verifier) VerifyAuthToken(params url.Values, token string) error {
	if token == "" {
		return authError(KindMissingSignature, "authToken is missing")
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
	return v.admit("v1:"+token, now)
}
