package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// Defaults of Config. The poll cadence after an asynchronous create is not documented; 10 s for
// up to 3 h mirrors the create retry window.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultPollInterval = 10 * time.Second
	DefaultPollTimeout  = 3 * time.Hour
	DefaultMaxExchanges = 10_000
	maxReplyBody        = 1 << 20
)

// DefaultRetrySchedule returns KooGallery's documented automatic retries for an activity
// (§1.10): create, upgrade and orderNotify are retried once an hour for 3 h; renewal, status
// change and release once after an hour; kit syncs up to KitCalls calls (KitRetrySchedule); the
// others not at all.
func DefaultRetrySchedule(activity string) []time.Duration {
	if isKitActivity(activity) {
		return KitRetrySchedule(nil)
	}
	switch activity {
	case koogallery.ActivityNewInstance, koogallery.ActivityUpgradeInstance, koogallery.ActivityOrderNotify:
		return []time.Duration{time.Hour, time.Hour, time.Hour}
	case koogallery.ActivityRefreshInstance, koogallery.ActivityUpdateInstanceStatus, koogallery.ActivityReleaseInstance:
		return []time.Duration{time.Hour}
	}
	return nil
}

// Config configures a Simulator.
type Config struct {
	// ProductionURL is the merchant's production address; kit paths are appended to it.
	ProductionURL string
	// BasicKey and KitKey are the keys bound to the basic and kit interfaces.
	BasicKey, KitKey []byte
	// HTTPClient sends the calls; a plain client when nil.
	HTTPClient *http.Client
	// RetrySchedule replaces the documented delays between attempts of every activity that
	// KooGallery retries (tests compress it to milliseconds); for kit syncs it is stretched or
	// cut to their KitCalls calls (KitRetrySchedule). Nil keeps DefaultRetrySchedule.
	RetrySchedule []time.Duration
	// PollInterval and PollTimeout govern queryInstance polling after a create.
	PollInterval, PollTimeout time.Duration
	// Timeout bounds each call; KooGallery's is 5 s.
	Timeout time.Duration
	// Clock stamps the requests; time.Now when nil.
	Clock func() time.Time
	// Nonce returns a fresh nonce; 64 random upper-case hex characters when nil.
	Nonce func() string
	// MaxExchanges bounds the exchange log; the oldest entries are dropped beyond it.
	MaxExchanges int
}

// Exchange is one HTTP attempt of one activity.
type Exchange struct {
	Activity   string
	Attempt    int
	HTTPStatus int
	ResultCode string
	Latency    time.Duration
	// Err says why the attempt failed before or besides its result code (transport, Body-Sign…).
	Err string
}

// Response is the accepted outcome of a call.
type Response struct {
	HTTPStatus int
	Body       []byte
	Reply      koogallery.Reply
	Attempts   int
	Latency    time.Duration
}

// CallError is a call that failed on every attempt KooGallery would make.
type CallError struct {
	Activity   string
	Attempts   int
	HTTPStatus int
	ResultCode string
	Reason     string
}

func (e *CallError) Error() string {
	return fmt.Sprintf("%s failed after %d attempt(s): HTTP %d, result %q: %s", e.Activity, e.Attempts, e.HTTPStatus, e.ResultCode, e.Reason)
}

// Simulator plays KooGallery against one production URL. It is safe for concurrent use.
type Simulator struct {
	cfg  Config
	base *url.URL
	http *http.Client

	mu        sync.Mutex
	exchanges []Exchange
}

// New returns a Simulator.
func New(cfg Config) (*Simulator, error) {
	u, err := url.Parse(cfg.ProductionURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("production URL must be an absolute http(s) URL")
	}
	if len(cfg.BasicKey) == 0 {
		return nil, errors.New("basic key is required")
	}
	setDefaults(&cfg)
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Simulator{cfg: cfg, base: u, http: hc}, nil
}

func setDefaults(cfg *Config) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Nonce == nil {
		cfg.Nonce = RandomNonce
	}
	if cfg.MaxExchanges <= 0 {
		cfg.MaxExchanges = DefaultMaxExchanges
	}
}

// RandomNonce returns 64 random upper-case hex characters, the shape of KooGallery's nonces.
func RandomNonce() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// Exchanges returns a copy of the recorded exchanges, oldest first.
func (s *Simulator) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exchange(nil), s.exchanges...)
}

func (s *Simulator) record(e Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.exchanges) >= s.cfg.MaxExchanges {
		s.exchanges = append(s.exchanges[:0], s.exchanges[1:]...)
	}
	s.exchanges = append(s.exchanges, e)
}

func (s *Simulator) schedule(activity string) []time.Duration {
	def := DefaultRetrySchedule(activity)
	switch {
	case def == nil || s.cfg.RetrySchedule == nil:
		return def
	case isKitActivity(activity):
		return KitRetrySchedule(s.cfg.RetrySchedule)
	}
	return s.cfg.RetrySchedule
}

// target is what one call sends: the activity label, path, body, signing key and scheme.
type target struct {
	activity string
	path     string
	body     []byte
	kit      bool
	accept   func(code string) bool
}

func acceptSuccess(code string) bool { return code == koogallery.ResultSuccess }

// attempt makes one signed call and checks the reply as KooGallery's checker does: HTTP 200,
// JSON content type, a valid Body-Sign and a parseable resultCode.
func (s *Simulator) attempt(ctx context.Context, t target, n int) (*Response, Exchange) {
	ex := Exchange{Activity: t.activity, Attempt: n}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := s.newRequest(ctx, t)
	if err != nil {
		ex.Err = err.Error()
		return nil, ex
	}
	start := time.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		ex.Latency, ex.Err = time.Since(start), "transport: "+transportReason(err)
		return nil, ex
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	_ = resp.Body.Close()
	ex.Latency, ex.HTTPStatus = time.Since(start), resp.StatusCode
	if err != nil {
		ex.Err = "reading reply: " + transportReason(err)
		return nil, ex
	}
	reply, err := s.checkReply(resp, body, t.kit)
	ex.ResultCode = reply.ResultCode
	if err != nil {
		ex.Err = err.Error()
		return nil, ex
	}
	return &Response{HTTPStatus: resp.StatusCode, Body: body, Reply: reply, Attempts: n, Latency: ex.Latency}, ex
}

func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

func (s *Simulator) newRequest(ctx context.Context, t target) (*http.Request, error) {
	u := *s.base
	ts, nonce := koogallery.Timestamp(s.cfg.Clock()), s.cfg.Nonce()
	if t.kit {
		u.Path = strings.TrimSuffix(u.Path, "/") + t.path
	} else {
		u.RawQuery = koogallery.BasicQuery(s.cfg.BasicKey, t.body, nonce, ts).Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(t.body))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	if t.kit {
		if len(s.cfg.KitKey) == 0 {
			return nil, errors.New("no kit key configured")
		}
		koogallery.SetKitHeaders(req.Header, s.cfg.KitKey, t.body, nonce, ts)
	}
	return req, nil
}

func (s *Simulator) checkReply(resp *http.Response, body []byte, kit bool) (koogallery.Reply, error) {
	var reply koogallery.Reply
	if resp.StatusCode != http.StatusOK {
		return reply, fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	if ct := strings.ToLower(resp.Header.Get("Content-Type")); !strings.HasPrefix(ct, "application/json") {
		return reply, errors.New("content type is not application/json")
	}
	key := s.cfg.BasicKey
	if kit {
		key = s.cfg.KitKey
	}
	if err := koogallery.VerifyBodySign([][]byte{key}, resp.Header.Get(koogallery.HeaderBodySign), body); err != nil {
		return reply, fmt.Errorf("checking Body-Sign: %w", err)
	}
	if err := json.Unmarshal(body, &reply); err != nil || len(reply.ResultCode) != 6 {
		return reply, errors.New("reply is not JSON with a 6-character resultCode")
	}
	return reply, nil
}

// call sends t, retrying on the activity's schedule until a reply is accepted.
func (s *Simulator) call(ctx context.Context, t target) (*Response, error) {
	if t.accept == nil {
		t.accept = acceptSuccess
	}
	delays := s.schedule(t.activity)
	var last Exchange
	for n := 1; ; n++ {
		resp, ex := s.attempt(ctx, t, n)
		s.record(ex)
		if resp != nil && t.accept(resp.Reply.ResultCode) {
			return resp, nil
		}
		last = ex
		if n > len(delays) {
			break
		}
		if err := wait(ctx, delays[n-1]); err != nil {
			break
		}
	}
	reason := last.Err
	if reason == "" {
		reason = "unexpected result code"
	}
	return nil, &CallError{Activity: t.activity, Attempts: last.Attempt, HTTPStatus: last.HTTPStatus, ResultCode: last.ResultCode, Reason: reason}
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("waiting: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// Send sends any basic activity, signed, with KooGallery's retries for it. The reply is accepted
// on 000000.
func (s *Simulator) Send(ctx context.Context, req koogallery.BasicRequest) (*Response, error) {
	return s.send(ctx, req, acceptSuccess)
}

func (s *Simulator) send(ctx context.Context, req koogallery.BasicRequest, accept func(string) bool) (*Response, error) {
	body, err := koogallery.MarshalRequest(req)
	if err != nil {
		return nil, err
	}
	return s.call(ctx, target{activity: req.ActivityName(), body: body, accept: accept})
}
