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
)

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
			RelatePkgInstance: r.RelatePkgInstance, UsageValue: strconv.FormatFloat(r.UsageValue, 'f', -1, 64),
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
	case r.UsageValue <= 0 || math.IsInf(r.UsageValue, 0) || math.IsNaN(r.UsageValue):
		return errors.New("usage_value must be positive")
	case math.Abs(r.UsageValue*1e4-math.Round(r.UsageValue*1e4)) > 1e-6:
		return errors.New("usage_value has more than 4 decimals")
	case r.BeginTime.IsZero() || r.EndTime.IsZero() || r.RecordTime.IsZero():
		return errors.New("record_time, begin_time and end_time are required")
	case r.EndTime.Before(r.BeginTime):
		return errors.New("end_time is before begin_time")
	case len(r.MeteringSN) > 64 || len(r.RelatePkgInstance) > 64:
		return errors.New("metering_sn and relate_pkg_instance are at most 64 characters")
	}
	return nil
}

// PushUsage sends usage records with the seller-key signature of the current usage API. A push
// is retried only when a repeat cannot double-bill: when every record has a MeteringSN for
// KooGallery to de-duplicate on, or when the answer was throttling (the push was refused unread).
func (c *Client) PushUsage(ctx context.Context, records []UsageRecord) error {
	if len(c.cfg.UsageKey) == 0 {
		return errors.New("push usage: no usage key configured")
	}
	body, err := EncodeUsage(records)
	if err != nil {
		return fmt.Errorf("push usage: %w", err)
	}
	retryable := isThrottled
	if allHaveSN(records) {
		retryable = IsRetryable
	}
	var out errorBody
	err = c.withRetries(ctx, retryable, func(ctx context.Context) error {
		return c.do(ctx, http.MethodPost, UsagePushPath, nil, body, c.usageSigner(body), &out)
	})
	if err != nil {
		return fmt.Errorf("push usage: %w", err)
	}
	return nil
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
