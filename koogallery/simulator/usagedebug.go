package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// The simulator's own debug endpoints, beside the open API paths; KooGallery has no such API.
//
//	GET  /debug/usage                 UsageReport of every instance, without records
//	GET  /debug/usage/{instanceId}    UsageView of one instance, with its records
//	POST /debug/instances             register an instance: {"instanceId": "…", "startTime": "yyyyMMddTHHmmssZ"}
const (
	debugPrefix        = "/debug/"
	UsageDebugPath     = "/debug/usage"
	InstancesDebugPath = "/debug/instances"
	maxDebugBody       = 4 << 10
)

// UsageReport is the answer of GET /debug/usage.
type UsageReport struct {
	Stats     UsageStats      `json:"stats"`
	Instances []InstanceUsage `json:"instances"`
}

// UsageView is the answer of GET /debug/usage/{instanceId}: InstanceUsage with its records in the
// wire form they were pushed in.
type UsageView struct {
	InstanceUsage
	Records []WireUsage `json:"records"`
}

// WireUsage is a received record with the push's field names and formats.
type WireUsage struct {
	InstanceID        string `json:"instance_id"`
	RecordTime        string `json:"record_time"`
	BeginTime         string `json:"begin_time"`
	EndTime           string `json:"end_time"`
	UsageValue        string `json:"usage_value"`
	MeteringSN        string `json:"metering_sn,omitempty"`
	RelatePkgInstance string `json:"relate_pkg_instance,omitempty"`
}

type registration struct {
	InstanceID string `json:"instanceId"`
	StartTime  string `json:"startTime,omitempty"`
}

func (s *OpenAPIServer) serveDebug(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == UsageDebugPath && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, UsageReport{Stats: s.UsageStats(), Instances: s.UsageInstances()})
	case strings.HasPrefix(r.URL.Path, UsageDebugPath+"/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(r.URL.Path, UsageDebugPath+"/")
		writeJSON(w, http.StatusOK, viewOf(s.InstanceUsage(id)))
	case r.URL.Path == InstancesDebugPath && r.Method == http.MethodPost:
		s.registerFromRequest(w, r)
	default:
		writeErrorCode(w, http.StatusNotFound, "APIGW.0101", "The API does not exist or has not been published in the environment.")
	}
}

func (s *OpenAPIServer) registerFromRequest(w http.ResponseWriter, r *http.Request) {
	var reg registration
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDebugBody))
	if err == nil {
		err = json.Unmarshal(b, &reg)
	}
	var start time.Time
	if err == nil && reg.StartTime != "" {
		start, err = time.Parse(openapi.UsageTimeLayout, reg.StartTime)
	}
	if err != nil || reg.InstanceID == "" || len(reg.InstanceID) > maxIDLen {
		writeErrorCode(w, http.StatusBadRequest, openapi.CodeInvalidParameter, "want {\"instanceId\": \"…\", \"startTime\": \"yyyyMMddTHHmmssZ\"}")
		return
	}
	s.RegisterInstance(reg.InstanceID, start)
	w.WriteHeader(http.StatusNoContent)
}

func viewOf(in InstanceUsage) UsageView {
	v := UsageView{InstanceUsage: in, Records: make([]WireUsage, 0, len(in.Records))}
	for _, r := range in.Records {
		v.Records = append(v.Records, WireUsage{
			InstanceID: r.InstanceID, RecordTime: r.RecordTime.UTC().Format(openapi.UsageTimeLayout),
			BeginTime: r.BeginTime.UTC().Format(openapi.UsageTimeLayout), EndTime: r.EndTime.UTC().Format(openapi.UsageTimeLayout),
			UsageValue: openapi.FormatUsageValue(r.UsageValue), MeteringSN: r.MeteringSN, RelatePkgInstance: r.RelatePkgInstance,
		})
	}
	return v
}

// DebugClient reads a running simulator's debug endpoints (koosim serve) from another process.
type DebugClient struct {
	// BaseURL is the simulator's scheme and host, e.g. http://127.0.0.1:8090.
	BaseURL string
	// HTTP is the client to use; http.DefaultClient when nil.
	HTTP *http.Client
}

// Usage returns what the simulator received, per instance, without the records.
func (c DebugClient) Usage(ctx context.Context) (UsageReport, error) {
	var rep UsageReport
	return rep, c.call(ctx, http.MethodGet, UsageDebugPath, nil, &rep)
}

// InstanceUsage returns what the simulator received for one instance, with its records.
func (c DebugClient) InstanceUsage(ctx context.Context, instanceID string) (UsageView, error) {
	var v UsageView
	return v, c.call(ctx, http.MethodGet, UsageDebugPath+"/"+url.PathEscape(instanceID), nil, &v)
}

// RegisterInstance makes instanceID known to the simulator (OpenAPIServer.RegisterInstance).
func (c DebugClient) RegisterInstance(ctx context.Context, instanceID string, start time.Time) error {
	reg := registration{InstanceID: instanceID}
	if !start.IsZero() {
		reg.StartTime = start.UTC().Format(openapi.UsageTimeLayout)
	}
	b, err := json.Marshal(reg)
	if err != nil {
		return fmt.Errorf("encoding registration: %w", err)
	}
	return c.call(ctx, http.MethodPost, InstancesDebugPath, b, nil)
}

func (c DebugClient) call(ctx context.Context, method, path string, body []byte, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling the simulator: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the simulator's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("simulator answered HTTP %d: %.200s", resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the simulator's answer: %w", err)
	}
	return nil
}
