package simulator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// FuzzUsagePush sends signed bodies: whatever they hold, the answer is the error_code/error_msg
// shape with a code of the table, never an internal error, and what is accepted is kept whole.
func FuzzUsagePush(f *testing.F) {
	f.Add(body(rec(nil)))
	f.Add(body(rec(map[string]any{"usage_value": 2.5}), rec(map[string]any{"metering_sn": "sn-2", "begin_time": "20260301T060000Z", "end_time": "20260301T070000Z"})))
	f.Add(body(rec(map[string]any{"usage_value": "1.00001"})))
	f.Add(`{"usage_records":[{"instance_id":null}]}`)
	f.Add(`{"usage_records":[1,2]}`)
	f.Add(`[]`)
	codes := map[string]bool{
		openapi.CodeSuccess: true, openapi.CodeInputFailure: true, openapi.CodeInvalidParameter: true, openapi.CodeInstanceNotFound: true,
		openapi.CodeInvalidUsageEntity: true, openapi.CodeTooManyRecords: true, openapi.CodeBeginTimeLimit: true,
	}
	f.Fuzz(func(t *testing.T, b string) {
		srv := simulator.NewOpenAPIServer("AK", "SK", simulator.WithClock(clock), simulator.WithUsageKey(usageKey))
		srv.RegisterInstance(known, fixedNow.Add(-2*time.Hour))
		ts, nonce := strconv.FormatInt(fixedNow.UnixMilli(), 10), "n"
		req := httptest.NewRequest(http.MethodPost, openapi.UsagePushPath, strings.NewReader(b))
		req.Header.Set(openapi.HeaderUsageTS, ts)
		req.Header.Set(openapi.HeaderUsageNonce, nonce)
		req.Header.Set(openapi.HeaderUsageSignature, openapi.UsageSign(usageKey, ts, nonce, []byte(b)))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		var eb struct {
			Code string `json:"error_code"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || !codes[eb.Code] {
			t.Fatalf("answer %d %q", w.Code, w.Body.String())
		}
		recs := srv.Usage()
		if (eb.Code == openapi.CodeSuccess) != (len(recs) > 0) {
			t.Fatalf("code %s with %d records kept", eb.Code, len(recs))
		}
		for _, r := range recs {
			if r.UsageValue <= 0 || r.InstanceID != known || !r.EndTime.After(r.BeginTime) {
				t.Fatalf("kept %+v", r)
			}
		}
	})
}
