package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// Usage push acceptance (koogallery-openapi.md §6). The spec names no code for a stale ts or a
// reused nonce; they are refused as an illegal token (MKT.0154, HTTP 401), the authentication
// failure of the shared error table. A push is accepted or refused whole: one bad record refuses
// the call, with the record's index in the message, and nothing of it is kept.
const (
	// DefaultUsageWindow is how far a push's ts may be from the server's clock, either way, and
	// how long its nonce is remembered.
	DefaultUsageWindow = 60 * time.Second
	// UsageBeginLimit is how far back begin_time may lie (MKT.9004).
	UsageBeginLimit = 21 * 24 * time.Hour
	// maxUsageBody bounds what is read of a push before its signature is checked: 1000 records
	// of the longest fields fit in well under a MiB.
	maxUsageBody    = 1 << 20
	maxUsageNonces  = 1 << 16
	maxTSLen        = 20
	maxNonceLen     = 64
	maxSignatureLen = 1000
	maxIDLen        = 64
	maxValueLen     = 20
	usageTimeLen    = len(openapi.UsageTimeLayout)
)

// usageValueRE is a positive decimal with at most 8 digits before the point and 4 after it
// (Double(12,4)); the value must also be above zero.
var usageValueRE = regexp.MustCompile(`^[0-9]{1,8}(\.[0-9]{1,4})?$`)

// InstanceUsage is what the simulator received for one instance.
type InstanceUsage struct {
	InstanceID string `json:"instanceId"`
	// Known reports that the instance was registered (RegisterInstance), so pushes for it are
	// accepted.
	Known bool `json:"known"`
	// Records are the accepted records in arrival order, each metering_sn once.
	Records []openapi.UsageRecord `json:"-"`
	// Total is the sum of the accepted records' usage_value.
	Total float64 `json:"total"`
	// Duplicates counts records sent again with a metering_sn already accepted and the same
	// content: de-duplicated, not billed. A retry after a lost answer makes one.
	Duplicates int `json:"duplicates"`
	// Conflicts counts records sent with a metering_sn already accepted but other content: not
	// billed, and a merchant bug (one SN for two records).
	Conflicts int `json:"conflicts"`
	// Overlaps counts accepted records whose [begin_time, end_time) overlaps an earlier accepted
	// record of the instance under another metering_sn: the same time billed twice.
	Overlaps int `json:"overlaps"`
}

// UsageStats sums up every usage push the simulator answered.
type UsageStats struct {
	// Pushes counts accepted calls, Records the records they added (duplicates excluded).
	Pushes  int `json:"pushes"`
	Records int `json:"records"`
	// Duplicates, Conflicts and Overlaps are the sums of InstanceUsage's.
	Duplicates int `json:"duplicates"`
	Conflicts  int `json:"conflicts"`
	Overlaps   int `json:"overlaps"`
	// Refused counts refused calls by error_code, injected failures included.
	Refused map[string]int `json:"refused"`
}

type usageLedger struct {
	anyInstance bool
	window      time.Duration
	known       map[string]time.Time // instance ID → start, the earliest begin_time allowed
	instances   map[string]*InstanceUsage
	units       map[string]int64 // instance ID → Total in 1e-4 units, summed exactly
	bySN        map[string]openapi.UsageRecord
	arrival     []openapi.UsageRecord
	nonces      map[string]time.Time // nonce → when it may be forgotten
	stats       UsageStats
	loseAnswers int
}

func newUsageLedger() usageLedger {
	return usageLedger{
		window: DefaultUsageWindow, known: map[string]time.Time{}, instances: map[string]*InstanceUsage{},
		units: map[string]int64{}, bySN: map[string]openapi.UsageRecord{}, nonces: map[string]time.Time{},
		stats: UsageStats{Refused: map[string]int{}},
	}
}

// WithAnyInstance accepts usage for instances never registered with RegisterInstance; without it
// such records are refused with MKT.9001, as KooGallery refuses an instance it never created.
func WithAnyInstance() ServerOption { return func(s *OpenAPIServer) { s.usage.anyInstance = true } }

// WithUsageWindow sets how far a usage push's ts may be from the clock (DefaultUsageWindow).
func WithUsageWindow(d time.Duration) ServerOption {
	return func(s *OpenAPIServer) { s.usage.window = d }
}

// RegisterInstance makes instanceID known, as KooGallery knows the instances merchants return from
// newInstance, so usage pushed for it is accepted. A record may not begin before start (the
// resource's start time); a zero start sets no such bound.
func (s *OpenAPIServer) RegisterInstance(instanceID string, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage.known[instanceID] = start
}

// LoseUsageAnswers makes the next n accepted pushes be recorded and then have their answer
// dropped (the connection is closed), as when the network fails after KooGallery stored them.
func (s *OpenAPIServer) LoseUsageAnswers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage.loseAnswers += n
}

// Usage returns every accepted usage record in arrival order, each metering_sn once.
func (s *OpenAPIServer) Usage() []openapi.UsageRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]openapi.UsageRecord(nil), s.usage.arrival...)
}

// InstanceUsage returns what was received for instanceID (an empty InstanceUsage when nothing
// was). Its Records are a copy.
func (s *OpenAPIServer) InstanceUsage(instanceID string) InstanceUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage.snapshot(instanceID)
}

// UsageInstances returns what was received for every instance that was registered or sent
// records, sorted by instance ID.
func (s *OpenAPIServer) UsageInstances() []InstanceUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for id := range s.usage.known {
		seen[id] = true
	}
	for id := range s.usage.instances {
		seen[id] = true
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]InstanceUsage, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.usage.snapshot(id))
	}
	return out
}

// UsageStats returns the totals over every usage push.
func (s *OpenAPIServer) UsageStats() UsageStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.usage.stats
	st.Refused = make(map[string]int, len(s.usage.stats.Refused))
	for k, v := range s.usage.stats.Refused {
		st.Refused[k] = v
	}
	return st
}

func (l *usageLedger) snapshot(id string) InstanceUsage {
	_, known := l.known[id]
	in, ok := l.instances[id]
	if !ok {
		return InstanceUsage{InstanceID: id, Known: known || l.anyInstance}
	}
	out := *in
	out.Known = known || l.anyInstance
	out.Records = append([]openapi.UsageRecord(nil), in.Records...)
	out.Total = float64(l.units[id]) / 1e4
	return out
}

// refusal is a refused push: the HTTP status and the error_code/error_msg of the answer.
type refusal struct {
	status    int
	code, msg string
}

func (r *refusal) Error() string { return r.code + " " + r.msg }

// refuse builds a refusal whose message is the table's resultMsg followed by the details, as the
// spec says failing answers carry them.
func refuse(status int, code, msg, format string, args ...any) *refusal {
	if format != "" {
		msg += ": " + fmt.Sprintf(format, args...)
	}
	return &refusal{status: status, code: code, msg: msg}
}

func inputFailure(i int, format string, args ...any) *refusal {
	return refuse(http.StatusInternalServerError, openapi.CodeInputFailure, "Failure of input parameter", "record %d: "+format, append([]any{i}, args...)...)
}

func invalidParameter(format string, args ...any) *refusal {
	return refuse(http.StatusBadRequest, openapi.CodeInvalidParameter, "Invalid parameter", format, args...)
}

func invalidEntity(i int, format string) *refusal {
	return refuse(http.StatusInternalServerError, openapi.CodeInvalidUsageEntity, "Invalid usage enties.", "record %d: "+format, i)
}

func beginLimit(i int, format string) *refusal {
	return refuse(http.StatusInternalServerError, openapi.CodeBeginTimeLimit, "Record beginTime extends Limit.", "record %d: "+format, i)
}

func (s *OpenAPIServer) pushUsage(w http.ResponseWriter, r *http.Request) {
	records, err := s.acceptUsage(w, r)
	if err != nil {
		var rf *refusal
		if !errors.As(err, &rf) {
			rf = refuse(http.StatusInternalServerError, openapi.CodeInternal, "System internal error.", "")
		}
		s.mu.Lock()
		s.usage.stats.Refused[rf.code]++
		s.mu.Unlock()
		writeErrorCode(w, rf.status, rf.code, rf.msg)
		return
	}
	s.mu.Lock()
	s.usage.record(records)
	lose := s.usage.loseAnswers > 0
	if lose {
		s.usage.loseAnswers--
	}
	s.mu.Unlock()
	if lose {
		panic(http.ErrAbortHandler)
	}
	writeErrorCode(w, http.StatusOK, openapi.CodeSuccess, "success")
}

// acceptUsage runs the checks in order of cost: headers and clock before the body is read,
// the signature before the body is parsed.
func (s *OpenAPIServer) acceptUsage(w http.ResponseWriter, r *http.Request) ([]openapi.UsageRecord, error) {
	now := s.now()
	nonce, err := s.checkUsageHeaders(r.Header, now)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUsageBody))
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, openapi.CodeTooManyRecords, "Usage records extends size limit.", "")
	}
	if len(s.usageKey) == 0 || openapi.VerifyUsageSign(s.usageKey, r.Header, body) != nil {
		return nil, refuse(http.StatusBadRequest, openapi.CodeInvalidBodySign, "Invalid body sign", "")
	}
	if !s.freshNonce(nonce, now) {
		return nil, refuse(http.StatusUnauthorized, openapi.CodeIllegalToken, "Illegal token", "nonce already used")
	}
	if f, ok := s.nextFailure(UsageFailKey); ok {
		if f.status == 0 {
			panic(http.ErrAbortHandler)
		}
		return nil, refuse(f.status, f.code, "injected failure", "")
	}
	records, err := parseUsage(body)
	if err != nil {
		return nil, err
	}
	if err := s.checkUsage(records, now); err != nil {
		return nil, err
	}
	return records, nil
}

// checkUsageHeaders checks the ts, nonce and signature headers' presence and lengths and the ts
// window, and returns the nonce.
func (s *OpenAPIServer) checkUsageHeaders(h http.Header, now time.Time) (string, error) {
	ts, nonce, sig := h.Get(openapi.HeaderUsageTS), h.Get(openapi.HeaderUsageNonce), h.Get(openapi.HeaderUsageSignature)
	switch {
	case ts == "" || nonce == "" || sig == "":
		return "", invalidParameter("the ts, nonce and signature headers are required")
	case len(ts) > maxTSLen || len(nonce) > maxNonceLen || len(sig) > maxSignatureLen:
		return "", refuse(http.StatusInternalServerError, openapi.CodeInputFailure, "Failure of input parameter", "ts, nonce or signature header too long")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", refuse(http.StatusInternalServerError, openapi.CodeInputFailure, "Failure of input parameter", "ts is not Unix milliseconds")
	}
	s.mu.Lock()
	window := s.usage.window
	s.mu.Unlock()
	if d := now.Sub(time.UnixMilli(ms)); d > window || d < -window {
		return "", refuse(http.StatusUnauthorized, openapi.CodeIllegalToken, "Illegal token", "ts is outside the accepted window")
	}
	return nonce, nil
}

// freshNonce remembers nonce for twice the window (a ts may be a window early or late) and
// reports whether it was new. Only signed pushes get here, so the cache grows only with the
// caller's own calls; past maxUsageNonces the forgettable ones are dropped.
func (s *OpenAPIServer) freshNonce(nonce string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.usage.nonces[nonce]; ok && now.Before(until) {
		return false
	}
	if len(s.usage.nonces) >= maxUsageNonces {
		for n, until := range s.usage.nonces {
			if !now.Before(until) {
				delete(s.usage.nonces, n)
			}
		}
	}
	s.usage.nonces[nonce] = now.Add(2 * s.usage.window)
	return true
}

// usageFields are the fields of UsagePushData; anything else is a parameter the API does not
// define.
var usageFields = map[string]bool{
	"instance_id": true, "record_time": true, "begin_time": true, "end_time": true,
	"usage_value": true, "metering_sn": true, "relate_pkg_instance": true,
}

var mandatoryUsageFields = []string{"instance_id", "record_time", "begin_time", "end_time", "usage_value"}

// parseUsage decodes a push body by the field rules of §6.1: formats, lengths and the decimals
// of usage_value (a JSON string, or a number as the intl page types it).
func parseUsage(body []byte) ([]openapi.UsageRecord, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, invalidParameter("the body is not a JSON object")
	}
	for k := range top {
		if k != "usage_records" {
			return nil, invalidParameter("unknown field %.40q", k)
		}
	}
	raw, ok := top["usage_records"]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil, invalidParameter("usage_records is required")
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalidParameter("usage_records is not a list of objects")
	}
	switch {
	case len(list) == 0:
		return nil, refuse(http.StatusInternalServerError, openapi.CodeInputFailure, "Failure of input parameter", "usage_records is empty")
	case len(list) > openapi.MaxUsageRecords:
		return nil, refuse(http.StatusInternalServerError, openapi.CodeTooManyRecords, "Usage records extends size limit.", "")
	}
	out := make([]openapi.UsageRecord, 0, len(list))
	for i, fields := range list {
		r, err := parseRecord(i, fields)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRecord(i int, fields map[string]json.RawMessage) (openapi.UsageRecord, error) {
	str, err := recordStrings(i, fields)
	if err != nil {
		return openapi.UsageRecord{}, err
	}
	r := openapi.UsageRecord{InstanceID: str["instance_id"], MeteringSN: str["metering_sn"], RelatePkgInstance: str["relate_pkg_instance"]}
	if r.InstanceID == "" {
		return openapi.UsageRecord{}, inputFailure(i, "instance_id is empty")
	}
	for k, t := range map[string]*time.Time{"record_time": &r.RecordTime, "begin_time": &r.BeginTime, "end_time": &r.EndTime} {
		v, err := time.Parse(openapi.UsageTimeLayout, str[k])
		if len(str[k]) != usageTimeLen || err != nil {
			return openapi.UsageRecord{}, inputFailure(i, "%s is not yyyyMMdd'T'HHmmss'Z'", k)
		}
		*t = v
	}
	v, err := parseUsageValue(fields["usage_value"])
	if err != nil {
		return openapi.UsageRecord{}, inputFailure(i, "usage_value %s", err.Error())
	}
	r.UsageValue = v
	return r, nil
}

// recordStrings checks a record's field names and returns its string fields (all but
// usage_value), each within its maximum length.
func recordStrings(i int, fields map[string]json.RawMessage) (map[string]string, error) {
	for k := range fields {
		if !usageFields[k] {
			return nil, invalidParameter("record %d: unknown field %.40q", i, k)
		}
	}
	for _, k := range mandatoryUsageFields {
		if v, ok := fields[k]; !ok || bytes.Equal(v, []byte("null")) {
			return nil, invalidParameter("record %d: %s is required", i, k)
		}
	}
	str := map[string]string{}
	for k, v := range fields {
		if k == "usage_value" {
			continue
		}
		var sv string
		if err := json.Unmarshal(v, &sv); err != nil {
			return nil, inputFailure(i, "%s is not a string", k)
		}
		if len(sv) > maxIDLen {
			return nil, inputFailure(i, "%s is longer than %d characters", k, maxIDLen)
		}
		str[k] = sv
	}
	return str, nil
}

func parseUsageValue(raw json.RawMessage) (float64, error) {
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errors.New("is not a string or a number")
		}
	}
	if len(s) > maxValueLen || !usageValueRE.MatchString(s) {
		return 0, errors.New("must be a decimal with at most 8 digits before the point and 4 after it")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, errors.New("must be above zero")
	}
	return v, nil
}

// checkUsage applies the rules that need the clock and the known instances. begin_time before
// end_time and end_time not in the future (MKT.9002) are inferred from what a metering period
// is; the rest are stated.
func (s *OpenAPIServer) checkUsage(records []openapi.UsageRecord, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range records {
		start, known := s.usage.known[r.InstanceID]
		switch {
		case !r.EndTime.After(r.BeginTime):
			return invalidEntity(i, "end_time is not after begin_time")
		case r.EndTime.After(now.Add(s.usage.window)):
			return invalidEntity(i, "end_time is in the future")
		case !known && !s.usage.anyInstance:
			return refuse(http.StatusInternalServerError, openapi.CodeInstanceNotFound, "Instance ID not found.", "record %d", i)
		case r.BeginTime.Before(now.Add(-UsageBeginLimit)):
			return beginLimit(i, "begin_time is more than 21 days ago")
		case known && !start.IsZero() && r.BeginTime.Before(start.Truncate(time.Second)):
			return beginLimit(i, "begin_time is before the instance started")
		}
	}
	return nil
}

// record keeps an accepted push: each metering_sn once, duplicates and overlaps counted.
func (l *usageLedger) record(records []openapi.UsageRecord) {
	l.stats.Pushes++
	for _, r := range records {
		in := l.instances[r.InstanceID]
		if in == nil {
			in = &InstanceUsage{InstanceID: r.InstanceID}
			l.instances[r.InstanceID] = in
		}
		if r.MeteringSN != "" {
			if prev, ok := l.bySN[r.MeteringSN]; ok {
				if sameRecord(prev, r) {
					in.Duplicates++
					l.stats.Duplicates++
				} else {
					in.Conflicts++
					l.stats.Conflicts++
				}
				continue
			}
			l.bySN[r.MeteringSN] = r
		}
		for _, prev := range in.Records {
			if r.BeginTime.Before(prev.EndTime) && prev.BeginTime.Before(r.EndTime) {
				in.Overlaps++
				l.stats.Overlaps++
				break
			}
		}
		in.Records = append(in.Records, r)
		l.arrival = append(l.arrival, r)
		l.units[r.InstanceID] += int64(math.Round(r.UsageValue * 1e4))
		l.stats.Records++
	}
}

// sameRecord compares what is billed; record_time may differ between a push and its retry.
func sameRecord(a, b openapi.UsageRecord) bool {
	return a.InstanceID == b.InstanceID && a.BeginTime.Equal(b.BeginTime) && a.EndTime.Equal(b.EndTime) &&
		a.UsageValue == b.UsageValue && a.RelatePkgInstance == b.RelatePkgInstance
}
