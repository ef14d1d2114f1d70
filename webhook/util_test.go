package webhook_test

import (
	"encoding/json"
	"net/http"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func httpHeader(h map[string][]string) http.Header { return http.Header(h) }
