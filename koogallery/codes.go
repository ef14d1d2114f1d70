package koogallery

import "errors"

// Result codes of §4. Anything but ResultSuccess is a failure to KooGallery, except
// ResultProcessing as the answer to newInstance (and to a single queryInstance).
const (
	ResultSuccess          = "000000"
	ResultAuthFailed       = "000001"
	ResultInvalidParam     = "000002"
	ResultInstanceNotFound = "000003"
	ResultProcessing       = "000004"
	ResultInternalError    = "000005"

	// Codes that only newInstance returns.
	ResultNoResource        = "000100"
	ResultMobileInvalid     = "000101"
	ResultEmailInvalid      = "000102"
	ResultAlreadyPurchased  = "000103"
	ResultProductError      = "000104"
	ResultAlreadySubscribed = "000105"
	ResultSoldOut           = "000106"
	ResultEmailDomainExists = "000107"
)

// Kind is a bounded, machine-readable reason for a rejected request, meant for metric labels.
type Kind string

// Kinds of Error. They are stable: dashboards and alerts key on them.
const (
	KindMissingSignature  Kind = "missing_signature"
	KindMalformedSign     Kind = "malformed_signature"
	KindSignatureMismatch Kind = "signature_mismatch"
	KindMissingTimestamp  Kind = "missing_timestamp"
	KindBadTimestamp      Kind = "bad_timestamp"
	KindStaleTimestamp    Kind = "stale_timestamp"
	KindFutureTimestamp   Kind = "future_timestamp"
	KindMissingNonce      Kind = "missing_nonce"
	KindBadNonce          Kind = "bad_nonce"
	KindReplayedNonce     Kind = "replayed_nonce"
	KindReplayCacheFull   Kind = "replay_cache_full"
	KindNoKey             Kind = "no_key"
	KindBadJSON           Kind = "bad_json"
	KindUnknownActivity   Kind = "unknown_activity"
	KindMissingField      Kind = "missing_field"
	KindFieldTooLong      Kind = "field_too_long"
	KindBadValue          Kind = "bad_value"
	KindCrypto            Kind = "crypto"
)

// Error is a protocol failure: the result code to answer with, a bounded kind for metrics, and a
// reason that is safe to put in resultMsg or a log line. The reason never contains a key, a
// password or a full signature, because it is built only from field names and fixed text.
type Error struct {
	Code   string
	Kind   Kind
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func newError(code string, kind Kind, reason string) *Error {
	return &Error{Code: code, Kind: kind, Reason: reason}
}

func authError(kind Kind, reason string) *Error {
	return newError(ResultAuthFailed, kind, reason)
}

func paramError(kind Kind, reason string) *Error {
	return newError(ResultInvalidParam, kind, reason)
}

// CodeOf returns the result code to answer a request that failed with err: ResultSuccess for
// nil, the code of a wrapped *Error, and ResultInternalError for anything else.
func CodeOf(err error) string {
	if err == nil {
		return ResultSuccess
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ResultInternalError
}

// KindOf returns the kind of a wrapped *Error, or "" when err is not one.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}
