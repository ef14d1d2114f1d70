package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Paths of the open APIs.
const (
	QueryOrderPath = "/api/mkp-openapi-public/global/v1/order/query"
	UsagePushPath  = "/api/mkp-openapi-public/global/v1/isv/usage-data"
)

// Defaults of Config.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultRetryBase = 500 * time.Millisecond
	maxRetryDelay    = 10 * time.Second
	maxResponse      = 1 << 20
)

// OrderQuerier resolves an order; the reconciler depends on this interface, not on Client.
type OrderQuerier interface {
	QueryOrder(ctx context.Context, orderID, orderLineID string) (*Order, error)
}

// Config configures a Client.
type Config struct {
	// Endpoint is the scheme and host of the open API, e.g. the mkt host of the seller's region.
	Endpoint string
	// AK and SK are the seller account's access key pair for APIG signing.
	AK, SK string
	// Credentials, when set, is asked for the AK/SK on every request instead of AK and SK, so a
	// rotated key pair (a reloaded Secret) is used without restarting.
	Credentials func() (ak, sk string)
	// UsageKey is the seller key bound to the basic interfaces, which signs usage pushes.
	UsageKey []byte
	// Timeout bounds each attempt. Default 10 s.
	Timeout time.Duration
	// HTTPClient is used for the calls; a client with default TLS verification when nil. Never
	// configure it to skip certificate verification: the docs require strict verification.
	HTTPClient *http.Client
	// Retries is how many times a retryable failure is repeated (0: never). Callers with their own
	// persisted backoff, like the reconciler, keep it low.
	Retries int
	// RetryBase is the first backoff delay, doubled per retry with jitter. Default 500 ms.
	RetryBase time.Duration
	// Clock returns now, for X-Sdk-Date and usage timestamps; time.Now when nil.
	Clock func() time.Time
}

// Client calls the KooGallery open APIs. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
}

var _ OrderQuerier = (*Client)(nil)

// NewClient returns a Client; it fails on an unusable endpoint or missing credentials.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("endpoint must be an absolute http(s) URL")
	}
	if cfg.Credentials == nil && (cfg.AK == "" || cfg.SK == "") {
		return nil, errors.New("AK and SK are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, base: u, http: hc}, nil
}

type queryOrderResponse struct {
	ResultCode string `json:"resultCode"`
	ResultMsg  string `json:"resultMsg"`
	OrderInfo  *Order `json:"orderInfo"`
}

// QueryOrder calls Query Order. orderLineID is optional. It is a read, so every retryable
// failure is retried up to Config.Retries times.
func (c *Client) QueryOrder(ctx context.Context, orderID, orderLineID string) (*Order, error) {
	if orderID == "" {
		return nil, errors.New("query order: orderId is required")
	}
	q := url.Values{"orderId": {orderID}}
	if orderLineID != "" {
		q.Set("orderLineId", orderLineID)
	}
	var out queryOrderResponse
	err := c.withRetries(ctx, IsRetryable, func(ctx context.Context) error {
		start := time.Now()
		err := c.do(ctx, http.MethodGet, QueryOrderPath, q, nil, nil, &out)
		if err == nil && out.OrderInfo == nil {
			err = &APIError{HTTPStatus: http.StatusOK, Code: out.ResultCode, Message: "response has no orderInfo"}
		}
		observeQueryOrder(start, err)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("query order %s: %w", orderID, err)
	}
	return out.OrderInfo, nil
}

func (c *Client) withRetries(ctx context.Context, retryable func(error) bool, call func(context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = c.attempt(ctx, call)
		if err == nil || attempt >= c.cfg.Retries || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if werr := sleep(ctx, c.backoff(attempt)); werr != nil {
			return err
		}
	}
}

func (c *Client) attempt(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	return call(ctx)
}

// backoff is exponential with full jitter in [d/2, d], so that replicas do not retry in step.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.RetryBase << attempt
	if d > maxRetryDelay || d <= 0 {
		d = maxRetryDelay
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter needs no cryptographic randomness
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting to retry: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// do sends one signed request and decodes a successful body into out. sign adds the headers of
// the usage scheme; nil means APIG AK/SK.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, sign func(*http.Request), out any) error {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		sign(req)
	} else {
		ak, sk := c.credentials()
		Sign(req, body, ak, sk, c.cfg.Clock())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("calling open API: %w", err)
		}
		return &networkError{err: redactURLError(err)}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return &networkError{err: fmt.Errorf("reading response: %w", err)}
	}
	return c.decode(resp.StatusCode, raw, out)
}

// redactURLError drops the URL from a transport error: it is harmless today but a query could one
// day carry something sensitive.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

type errorBody struct {
	ResultCode string `json:"resultCode"`
	ResultMsg  string `json:"resultMsg"`
	ErrorCode  string `json:"error_code"`
	ErrorMsg   string `json:"error_msg"`
}

func (c *Client) decode(status int, raw []byte, out any) error {
	var eb errorBody
	_ = json.Unmarshal(raw, &eb) // a non-JSON body still yields an APIError below
	code, msg := eb.ResultCode, eb.ResultMsg
	if code == "" {
		code, msg = eb.ErrorCode, eb.ErrorMsg
	}
	if status == http.StatusOK && code == CodeSuccess {
		if err := json.Unmarshal(raw, out); err != nil {
			return &APIError{HTTPStatus: status, Code: code, Message: "undecodable response: " + err.Error()}
		}
		return nil
	}
	return &APIError{HTTPStatus: status, Code: code, Message: c.redact(msg)}
}

// credentials returns the key pair to sign with now.
func (c *Client) credentials() (ak, sk string) {
	if c.cfg.Credentials != nil {
		return c.cfg.Credentials()
	}
	return c.cfg.AK, c.cfg.SK
}

// redact bounds a server message and removes the AK from it, since gateway errors echo parts of
// the request.
func (c *Client) redact(msg string) string {
	if ak, _ := c.credentials(); ak != "" {
		msg = strings.ReplaceAll(msg, ak, "<AK>")
	}
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "…"
	}
	return msg
}
