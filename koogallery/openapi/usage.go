package openapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Usage push headers (koogallery-openapi.md §6.1).
const (
	HeaderUsageSignature = "signature"
	HeaderUsageTS        = "ts"
	HeaderUsageNonce     = "nonce"
	// UsageTimeLayout is the UTC format of the usage record times.
	UsageTimeLayout = "20060102T150405Z"
	// MaxUsageRecords is the documented maximum of records per push.
	MaxUsageRecords = 1000
	// DefaultUsageBatchSize is how many records one push carries unless told otherwise. The usage
	// push page allows 1000, the shared error table prints the limit of MKT.9003 as 100; batches
	// of 100 are within both readings.
	DefaultUsageBatchSize = 100
	// MaxUsageValue bounds usage_value, a Double(12,4): at most 8 digits before the point.
	MaxUsageValue    = 1e8
	maxUsageDecimals = 4
)

// MeteringSN is the metering_sn of an instance's record for the period that ends at end (taken
// to the second, as on the wire). The same period always gets the same SN, so a push repeated
// after a crash or a lost answer is de-duplicated by KooGallery instead of billed twice. It is 64
// lowercase hex digits, the field's maximum, whatever the instance ID's length.
func MeteringSN(instanceID string, end time.Time) string {
	h := sha256.Sum256([]byte(instanceID + "\n" + end.UTC().Format(UsageTimeLayout)))
	return hex.EncodeToString(h[:])
}

// FormatUsageValue is usage_value as sent: plain decimal notation, at most 4 decimals, no
// trailing zeros. Floating-point noise below the fourth decimal (0.1+0.2) is rounded away.
func FormatUsageValue(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}

// UsageRecord is one pay-per-use metering record.
type UsageRecord struct {
	InstanceID string
	RecordTime time.Time
	BeginTime  time.Time
	EndTime    time.Time
	// UsageValue is positive with at most 4 decimals.
	UsageValue float64
	// MeteringSN is the merchant's unique record ID that KooGallery de-duplicates on. With it on
	// every record a push can be retried safely.
	MeteringSN string
	// RelatePkgInstance is the package instance in the "stop when used up" package scenario.
	RelatePkgInstance string
}

// wireUsage lists its fields in ascending name order so that the encoded body is already in the
// "natural sort" the signature is computed over.
type wireUsage struct {
	BeginTime         string `json:"begin_time"`
	EndTime           string `json:"end_time"`
	InstanceID        string `json:"instance_id"`
	MeteringSN        string `json:"metering_sn,omitempty"`
	RecordTime        string `json:"record_time"`
	RelatePkgInstance string `json:"relate_pkg_instance,omitempty"`
	UsageValue        string `json:"usage_value"`
}

// usagePushBody is the body of a usage push.
type usagePushBody struct {
	UsageRecords []wireUsage `json:"usage_records"`
}

// UsageSign is the usage push signature header:
// base64(HMAC-SHA256(key, "ts=<ts>&nonce=<nonce>&body=<body>")).
func UsageSign(key []byte, ts, nonce string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ts=" + ts + "&nonce=" + nonce + "&body="))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyUsageSign checks the usage push headers of a request body with key.
func VerifyUsageSign(key []byte, h http.Header, body []byte) error {
	ts, nonce, sig := h.Get(HeaderUsageTS), h.Get(HeaderUsageNonce), h.Get(HeaderUsageSignature)
	if ts == "" || nonce == "" || sig == "" {
		return errors.New("usage push lacks the ts, nonce or signature header")
	}
	if !hmac.Equal([]byte(sig), []byte(UsageSign(key, ts, nonce, body))) {
		return errors.New("usage push signature does not match")
	}
	return nil
}

// EncodeUsage validates records and returns the push body.
func EncodeUsage(records []UsageRecord) ([]byte, error) {
	if len(records) == 0 || len(records) > MaxUsageRecords {
		return nil, fmt.Errorf("want 1 to %d usage records, got %d", MaxUsageRecords, len(records))
	}
	body := usagePushBody{UsageRecords: make([]wireUsage, 0, len(records))}
	for i, r := range records {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("usage record %d: %w", i, err)
		}
		body.UsageRecords = append(body.UsageRecords, wireUsage{
			BeginTime: r.BeginTime.UTC().Format(UsageTimeLayout), EndTime: r.EndTime.UTC().Format(UsageTimeLayout),
			InstanceID: r.InstanceID, MeteringSN: r.MeteringSN, RecordTime: r.RecordTime.UTC().Format(UsageTimeLayout),
			RelatePkgInstance: r.RelatePkgInstance, UsageValue: FormatUsageValue(r.UsageValue),
		})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding usage: %w", err)
	}
	return b, nil
}

// DecodeUsage parses a push body back into records (the simulator's side).
func DecodeUsage(b []byte) ([]UsageRecord, error) {
	var body usagePushBody
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("decoding usage: %w", err)
	}
	out := make([]UsageRecord, 0, len(body.UsageRecords))
	for i, w := range body.UsageRecords {
		r, err := w.record()
		if err != nil {
			return nil, fmt.Errorf("usage record %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (w wireUsage) record() (UsageRecord, error) {
	r := UsageRecord{InstanceID: w.InstanceID, MeteringSN: w.MeteringSN, RelatePkgInstance: w.RelatePkgInstance}
	var err error
	parse := func(s string) time.Time {
		t, perr := time.Parse(UsageTimeLayout, s)
		if perr != nil && err == nil {
			err = fmt.Errorf("time %.20q is not yyyyMMddTHHmmssZ", s)
		}
		return t
	}
	r.RecordTime, r.BeginTime, r.EndTime = parse(w.RecordTime), parse(w.BeginTime), parse(w.EndTime)
	if err != nil {
		return UsageRecord{}, err
	}
	v, perr := strconv.ParseFloat(w.UsageValue, 64)
	if perr != nil {
		return UsageRecord{}, errors.New("usage_value is not a number")
	}
	r.UsageValue = v
	return r, r.validate()
}

func (r UsageRecord) validate() error {
	switch {
	case r.InstanceID == "" || len(r.InstanceID) > 64:
		return errors.New("instance_id must be 1 to 64 characters")
	case r.UsageValue <= 0 || math.IsNaN(r.UsageValue):
		return errors.New("usage_value must be positive")
	case r.UsageValue >= MaxUsageValue:
		return errors.New("usage_value must be below 1e8 (Double(12,4))")
	case math.Abs(r.UsageValue*1e4-math.Round(r.UsageValue*1e4)) > 1e-6:
		return errors.New("usage_value has more than 4 decimals")
	case r.BeginTime.IsZero() || r.EndTime.IsZero() || r.RecordTime.IsZero():
		return errors.New("record_time, begin_time and end_time are required")
	case !r.EndTime.Truncate(time.Second).After(r.BeginTime.Truncate(time.Second)):
		return errors.New("end_time must be after begin_time")
	case len(r.MeteringSN) > 64 || len(r.RelatePkgInstance) > 64:
		return errors.New("metering_sn and relate_pkg_instance are at most 64 characters")
	}
	return nil
}

// UsagePushOptions tunes PushUsageBatches.
type UsagePushOptions struct {
	// BatchSize is how many records one call carries: DefaultUsageBatchSize when 0, at most
	// MaxUsageRecords.
	BatchSize int
}

// UsageBatch is the outcome of one batch of a push.
type UsageBatch struct {
	// First and Count locate the batch in the records given to PushUsageBatches.
	First, Count int
	// Code is the API's result code: CodeSuccess when accepted, the error_code of a refusal, empty
	// when no answer came or the batch was not sent.
	Code string
	// HTTPStatus is the status of the last answer, 0 when there was none.
	HTTPStatus int
	// Attempts is how many times the batch was sent; 0 when it was refused locally or not sent.
	Attempts int
	// Err is nil when KooGallery accepted the batch. A batch that was not sent because an earlier
	// one failed in a way every later one would too holds ErrUsageNotSent.
	Err error
}

// ErrUsageNotSent marks the batches after a failure that is not about the records themselves
// (authentication, throttling, an unreachable or failing API, a cancelled context).
var ErrUsageNotSent = errors.New("usage batch not sent after an earlier batch failed")

// PushUsage sends records in batches (PushUsageBatches with the default options) and returns the
// first batch's error, if any batch failed.
func (c *Client) PushUsage(ctx context.Context, records []UsageRecord) error {
	_, err := c.PushUsageBatches(ctx, records, UsagePushOptions{})
	return err
}

// PushUsageBatches sends records in order, in batches within the API's limit, one result per
// batch. A batch is retried with backoff (Config.Retries, Config.RetryBase) only when a repeat
// cannot double-bill: when every record has a MeteringSN for KooGallery to de-duplicate on, or
// when the answer was throttling (the push was refused unread). A batch refused for its content
// (bad field, unknown instance, begin time out of range) does not stop the next; any other
// failure does, and the rest are reported as ErrUsageNotSent. The error is nil when every batch
// was accepted, else it wraps the first failure.
func (c *Client) PushUsageBatches(ctx context.Context, records []UsageRecord, opts UsagePushOptions) ([]UsageBatch, error) {
	if len(c.cfg.UsageKey) == 0 {
		return nil, errors.New("push usage: no usage key configured")
	}
	size := opts.BatchSize
	if size == 0 {
		size = DefaultUsageBatchSize
	}
	if size < 0 || size > MaxUsageRecords {
		return nil, fmt.Errorf("push usage: batch size must be 1 to %d, got %d", MaxUsageRecords, size)
	}
	if len(records) == 0 {
		return nil, nil
	}
	var (
		out    []UsageBatch
		first  error
		failed int
		stop   bool
	)
	for start := 0; start < len(records); start += size {
		b := UsageBatch{First: start, Count: min(size, len(records)-start)}
		if stop {
			b.Err = ErrUsageNotSent
		} else {
			c.pushBatch(ctx, records[start:start+b.Count], &b)
			stop = b.Err != nil && !isContentError(b.Err)
		}
		if b.Err != nil {
			failed++
			if first == nil {
				first = b.Err
			}
		}
		out = append(out, b)
	}
	if first != nil {
		return out, fmt.Errorf("push usage: %d of %d batches failed, the first: %w", failed, len(out), first)
	}
	return out, nil
}

// pushBatch sends one batch and fills in its outcome.
func (c *Client) pushBatch(ctx context.Context, records []UsageRecord, b *UsageBatch) {
	body, err := EncodeUsage(records)
	if err != nil {
		b.Err = &invalidUsageError{err: err}
		return
	}
	retryable := isThrottled
	if allHaveSN(records) {
		retryable = IsRetryable
	}
	var out errorBody
	b.Err = c.withRetries(ctx, retryable, func(ctx context.Context) error {
		b.Attempts++
		return c.do(ctx, http.MethodPost, UsagePushPath, nil, body, c.usageSigner(body), &out)
	})
	if e, ok := asAPIError(b.Err); ok {
		b.Code, b.HTTPStatus = e.Code, e.HTTPStatus
	} else if b.Err == nil {
		b.Code, b.HTTPStatus = CodeSuccess, http.StatusOK
	}
}

// invalidUsageError is a batch the client refused to send: a record breaks the API's field rules.
type invalidUsageError struct{ err error }

func (e *invalidUsageError) Error() string { return "invalid usage: " + e.err.Error() }
func (e *invalidUsageError) Unwrap() error { return e.err }

// isContentError reports a refusal of the records themselves, which says nothing about the next
// batch.
func isContentError(err error) bool {
	var ie *invalidUsageError
	if errors.As(err, &ie) {
		return true
	}
	e, ok := asAPIError(err)
	if !ok {
		return false
	}
	switch e.Code {
	case CodeInputFailure, CodeInvalidParameter, CodeParameterError,
		CodeInstanceNotFound, CodeInvalidUsageEntity, CodeTooManyRecords, CodeBeginTimeLimit:
		return true
	}
	return false
}

func isThrottled(err error) bool {
	e, ok := asAPIError(err)
	return ok && e.Throttled()
}

func allHaveSN(records []UsageRecord) bool {
	for _, r := range records {
		if r.MeteringSN == "" {
			return false
		}
	}
	return true
}

// usageSigner signs each attempt with a fresh ts and nonce.
func (c *Client) usageSigner(body []byte) func(*http.Request) {
	return func(req *http.Request) {
		ts := strconv.FormatInt(c.cfg.Clock().UnixMilli(), 10)
		var n [16]byte
		_, _ = rand.Read(n[:]) // crypto/rand.Read never fails on supported platforms
		nonce := hex.EncodeToString(n[:])
		req.Header.Set(HeaderUsageTS, ts)
		req.Header.Set(HeaderUsageNonce, nonce)
		req.Header.Set(HeaderUsageSignature, UsageSign(c.cfg.UsageKey, ts, nonce, body))
	}
}
