package simulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// DefaultSkew is how far X-Sdk-Date may be from the server's clock, as APIG allows.
const DefaultSkew = 15 * time.Minute

// OpenAPIServer is an http.Handler standing in for the KooGallery open API: Query Order and
// usage push. It is safe for concurrent use.
type OpenAPIServer struct {
	ak, sk   string
	usageKey []byte
	now      func() time.Time
	skew     time.Duration

	mu       sync.Mutex
	orders   map[string]openapi.Order
	failures map[string][]failure
	queries  map[string]int
	usage    usageLedger
}

type failure struct {
	status int
	code   string
}

// ServerOption configures an OpenAPIServer.
type ServerOption func(*OpenAPIServer)

// WithClock sets the clock X-Sdk-Date is checked against.
func WithClock(now func() time.Time) ServerOption { return func(s *OpenAPIServer) { s.now = now } }

// WithUsageKey sets the seller key that usage pushes must be signed with; without it every push
// is refused.
func WithUsageKey(key []byte) ServerOption { return func(s *OpenAPIServer) { s.usageKey = key } }

// NewOpenAPIServer returns a server that accepts requests signed with ak/sk and knows the mock
// orders.
func NewOpenAPIServer(ak, sk string, opts ...ServerOption) *OpenAPIServer {
	s := &OpenAPIServer{
		ak: ak, sk: sk, now: time.Now, skew: DefaultSkew,
		orders: map[string]openapi.Order{}, failures: map[string][]failure{}, queries: map[string]int{},
		usage: newUsageLedger(),
	}
	for _, o := range opts {
		o(s)
	}
	for _, o := range MockOrders() {
		s.orders[o.OrderID] = o
	}
	return s
}

// RegisterOrder adds or replaces an order.
func (s *OpenAPIServer) RegisterOrder(o openapi.Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[o.OrderID] = o
}

// UpdateOrder changes a registered order in place (its SKU, period, expiry…); it reports whether
// the order exists.
func (s *OpenAPIServer) UpdateOrder(orderID string, update func(*openapi.Order)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if ok {
		update(&o)
		s.orders[orderID] = o
	}
	return ok
}

// UsageFailKey is the FailNext key that targets usage pushes instead of an order.
const UsageFailKey = "usage-push"

// FailNext makes the next n calls for orderID (or UsageFailKey) fail with the HTTP status and
// MKT code given; status 0 drops the connection without an answer. Later calls succeed again.
func (s *OpenAPIServer) FailNext(orderID string, n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.failures[orderID] = append(s.failures[orderID], failure{status: status, code: code})
	}
}

// Queries returns how many Query Order calls for orderID reached the handler, failed or not.
func (s *OpenAPIServer) Queries(orderID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[orderID]
}

func (s *OpenAPIServer) nextFailure(key string) (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.failures[key]
	if len(fs) == 0 {
		return failure{}, false
	}
	s.failures[key] = fs[1:]
	return fs[0], true
}

// ServeHTTP routes the two APIs and the simulator's own usage debug endpoints (UsageDebugPath).
func (s *OpenAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == openapi.QueryOrderPath && r.Method == http.MethodGet:
		s.queryOrder(w, r)
	case r.URL.Path == openapi.UsagePushPath && r.Method == http.MethodPost:
		s.pushUsage(w, r)
	case strings.HasPrefix(r.URL.Path, debugPrefix):
		s.serveDebug(w, r)
	default:
		writeErrorCode(w, http.StatusNotFound, "APIGW.0101", "The API does not exist or has not been published in the environment.")
	}
}

var queryParams = map[string]bool{"orderId": true, "orderLineId": true}

func (s *OpenAPIServer) queryOrder(w http.ResponseWriter, r *http.Request) {
	if err := openapi.VerifyRequest(r, nil, s.ak, s.sk, s.now(), s.skew); err != nil {
		writeErrorCode(w, http.StatusUnauthorized, "APIGW.0301", "Incorrect IAM authentication information: "+err.Error())
		return
	}
	q := r.URL.Query()
	orderID, lineID := q.Get("orderId"), q.Get("orderLineId")
	s.mu.Lock()
	s.queries[orderID]++
	s.mu.Unlock()
	if f, ok := s.nextFailure(orderID); ok {
		fail(w, f)
		return
	}
	for k := range q {
		if !queryParams[k] {
			writeMKT(w, http.StatusBadRequest, openapi.CodeInvalidParameter, "Invalid parameter")
			return
		}
	}
	if orderID == "" {
		writeMKT(w, http.StatusBadRequest, openapi.CodeInvalidParameter, "Invalid parameter")
		return
	}
	if len(orderID) > 64 || len(lineID) > 64 {
		writeMKT(w, http.StatusInternalServerError, openapi.CodeInputFailure, "Failure of input parameter")
		return
	}
	order, ok := s.lookup(orderID, lineID)
	if !ok {
		// The real code for an unknown order is undocumented; an input failure is the closest row.
		writeMKT(w, http.StatusInternalServerError, openapi.CodeInputFailure, "Failure of input parameter")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"resultCode": openapi.CodeSuccess, "resultMsg": "Success", "orderInfo": order})
}

// lookup returns the order, narrowed to the requested line when one is given.
func (s *OpenAPIServer) lookup(orderID, lineID string) (openapi.Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok || lineID == "" {
		return o, ok
	}
	l, ok := o.Line(lineID)
	if !ok {
		return o, false
	}
	o.Lines = []openapi.OrderLine{*l}
	return o, true
}

func fail(w http.ResponseWriter, f failure) {
	if f.status == 0 {
		panic(http.ErrAbortHandler)
	}
	writeMKT(w, f.status, f.code, "injected failure")
}

func writeMKT(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"resultCode": code, "resultMsg": msg})
}

// writeErrorCode writes the error_code/error_msg body of usage push and of the API gateway.
func writeErrorCode(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error_code": code, "error_msg": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resultCode":"MKT.0999","resultMsg":"System internal error."}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
