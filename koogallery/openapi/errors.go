package openapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Result codes of the open APIs (koogallery-openapi.md §3 and §6.3).
const (
	CodeSuccess            = "MKT.0000"
	CodeInternal           = "MKT.0999"
	CodeInputFailure       = "MKT.0100"
	CodeInvalidParameter   = "MKT.0101"
	CodeInvalidBodySign    = "MKT.0102"
	CodeParameterError     = "MKT.0199"
	CodeIllegalOperation   = "MKT.0150"
	CodeNoAuthority        = "MKT.0151"
	CodeIllegalToken       = "MKT.0154"
	CodeThrottled          = "MKT.0250"
	CodeInstanceNotFound   = "MKT.9001"
	CodeInvalidUsageEntity = "MKT.9002"
	CodeTooManyRecords     = "MKT.9003"
	CodeBeginTimeLimit     = "MKT.9004"
)

// maxMessage bounds the server message kept in an APIError: gateway errors echo whole canonical
// requests, which belong in a debug session, not in a status condition.
const maxMessage = 256

// APIError is a failed open-API call: the HTTP status and the MKT.* (or APIGW.*) code and
// message from the body. It never holds the AK, the SK or a signature.
type APIError struct {
	HTTPStatus int
	Code       string
	Message    string
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = "no result code"
	}
	return fmt.Sprintf("koogallery open API: HTTP %d, %s: %s", e.HTTPStatus, code, e.Message)
}

// Retryable reports whether repeating the call may succeed: internal errors, throttling and
// gateway or server failures without a known client-side code. Parameter, authentication and
// not-found errors will fail the same way again.
func (e *APIError) Retryable() bool {
	switch e.Code {
	case CodeInternal, CodeThrottled:
		return true
	case CodeInputFailure, CodeInvalidParameter, CodeInvalidBodySign, CodeParameterError,
		CodeIllegalOperation, CodeNoAuthority, CodeIllegalToken,
		CodeInstanceNotFound, CodeInvalidUsageEntity, CodeTooManyRecords, CodeBeginTimeLimit:
		return false
	}
	switch {
	case e.HTTPStatus == http.StatusTooManyRequests, e.HTTPStatus == http.StatusNotAcceptable:
		return true
	case e.HTTPStatus >= 500:
		return true
	}
	return false
}

// Throttled reports a rate-limit answer.
func (e *APIError) Throttled() bool {
	return e.Code == CodeThrottled || e.HTTPStatus == http.StatusTooManyRequests
}

func asAPIError(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}

// IsNotFound reports an answer that the requested object does not exist (MKT.9001 or HTTP 404).
// Note that the code KooGallery uses for an unknown order ID is not documented.
func IsNotFound(err error) bool {
	e, ok := asAPIError(err)
	return ok && (e.Code == CodeInstanceNotFound || e.HTTPStatus == http.StatusNotFound)
}

// IsAuth reports an authentication or authorisation failure (HTTP 401/403, MKT.015x, APIGW.*):
// fix the AK/SK or the account's permissions, do not retry.
func IsAuth(err error) bool {
	e, ok := asAPIError(err)
	if !ok {
		return false
	}
	switch {
	case e.HTTPStatus == http.StatusUnauthorized, e.HTTPStatus == http.StatusForbidden:
		return true
	case e.Code == CodeIllegalOperation, e.Code == CodeNoAuthority, e.Code == CodeIllegalToken:
		return true
	}
	return strings.HasPrefix(e.Code, "APIGW.") && e.HTTPStatus < 500
}

// IsInvalidInput reports a rejected request parameter (MKT.0100/0101/0199).
func IsInvalidInput(err error) bool {
	e, ok := asAPIError(err)
	return ok && (e.Code == CodeInputFailure || e.Code == CodeInvalidParameter || e.Code == CodeParameterError)
}

// IsRetryable reports whether err is worth retrying: a retryable APIError or a network failure
// that is not the caller's own cancellation.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := asAPIError(err); ok {
		return e.Retryable()
	}
	var ne *networkError
	return errors.As(err, &ne)
}

// networkError marks a transport failure (no HTTP answer) of one attempt.
type networkError struct{ err error }

func (e *networkError) Error() string { return "network: " + e.err.Error() }
func (e *networkError) Unwrap() error { return e.err }
