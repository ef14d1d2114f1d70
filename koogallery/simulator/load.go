package simulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// Bounds of a load run, so that a typo cannot turn a benchmark into a flood.
const (
	MaxLoadCount       = 1_000_000
	MaxLoadDuration    = time.Hour
	MaxLoadConcurrency = 256
	maxLatencySamples  = 1_000_000
)

// LoadConfig bounds a load run. At least one of Count and Duration must be set; the run stops
// at whichever comes first.
type LoadConfig struct {
	Count    int
	Duration time.Duration
	// Rate is the target calls per second over all workers; 0 means as fast as possible.
	Rate float64
	// Concurrency is the number of workers. Default 4.
	Concurrency int
	// Activity is newInstance (default; each call a new order line), queryInstance,
	// updateInstanceStatus or refreshInstance.
	Activity string
	// OrderPrefix starts the order ID of each newInstance or refreshInstance call (default
	// LOAD): call i orders OrderPrefix followed by i in 12 digits, so a run's orders can be
	// registered beforehand.
	OrderPrefix string
	// InstanceID is what queryInstance asks for (one ID or up to 100, comma-separated). For
	// updateInstanceStatus it lists the instances to freeze, then unfreeze, in turn; for
	// refreshInstance, the instances to renew in turn.
	InstanceID string
	Test       bool
	// AllowRemote permits a production URL that is not a loopback address.
	AllowRemote bool
}

// LoadResult summarises a load run. Latencies are of the calls that got an HTTP answer.
type LoadResult struct {
	Sent, Succeeded, Failed int
	Codes                   map[string]int
	Elapsed                 time.Duration
	P50, P90, P95, P99, Max time.Duration
	Mean                    time.Duration
	// PerSecond is the achieved call rate.
	PerSecond float64
}

func (c *LoadConfig) check() error {
	switch {
	case c.Count <= 0 && c.Duration <= 0:
		return errors.New("load needs a count or a duration")
	case c.Count > MaxLoadCount:
		return fmt.Errorf("count is above the %d bound", MaxLoadCount)
	case c.Duration > MaxLoadDuration:
		return fmt.Errorf("duration is above the %s bound", MaxLoadDuration)
	case c.Concurrency > MaxLoadConcurrency:
		return fmt.Errorf("concurrency is above the %d bound", MaxLoadConcurrency)
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Activity != "" && c.Activity != koogallery.ActivityNewInstance && c.Activity != koogallery.ActivityQueryInstance &&
		c.Activity != koogallery.ActivityUpdateInstanceStatus && c.Activity != koogallery.ActivityRefreshInstance:
		return errors.New("load sends newInstance, queryInstance, updateInstanceStatus or refreshInstance")
	case c.Activity != "" && c.Activity != koogallery.ActivityNewInstance && c.InstanceID == "":
		return fmt.Errorf("%s load needs instance IDs", c.Activity)
	}
	return nil
}

// IsLoopback reports whether host (a name or an IP, with or without port) is a loopback target.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Load sends single signed calls (no retries, no polling, not recorded as exchanges) at a bounded
// rate and reports latency percentiles and result codes.
func (s *Simulator) Load(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if !cfg.AllowRemote && !IsLoopback(s.base.Host) {
		return nil, errors.New("load only targets loopback addresses unless remote targets are allowed")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	// Only issuing stops at the deadline; calls in flight finish so they are not counted as errors.
	issueCtx, cancel := context.WithCancel(ctx)
	if cfg.Duration > 0 {
		issueCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	sim := s.withConnections(cfg.Concurrency)
	ticks := s.issue(issueCtx, cfg)
	agg := &loadAggregate{codes: map[string]int{}}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ticks {
				resp, ex := sim.attempt(ctx, s.loadTarget(cfg, i), 1)
				agg.add(resp != nil, ex)
			}
		}()
	}
	wg.Wait()
	return agg.result(time.Since(start)), nil
}

// withConnections is s sending through a client that keeps up to n idle connections to the
// target, when s was given none of its own. net/http keeps two per host: with more workers, a
// call would often open a new connection because two others had just finished, and a load run
// would measure its own connection churn as the endpoint's latency.
func (s *Simulator) withConnections(n int) *Simulator {
	if s.cfg.HTTPClient != nil {
		return s
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = n, n
	return &Simulator{cfg: s.cfg, base: s.base, http: &http.Client{Transport: tr}}
}

// issue yields call numbers at the configured rate until the count is reached or ctx ends.
func (s *Simulator) issue(ctx context.Context, cfg LoadConfig) <-chan int {
	ch := make(chan int)
	go func() {
		defer close(ch)
		var tick <-chan time.Time
		if cfg.Rate > 0 {
			t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
			defer t.Stop()
			tick = t.C
		}
		for i := 0; cfg.Count <= 0 || i < cfg.Count; i++ {
			if tick != nil {
				select {
				case <-ctx.Done():
					return
				case <-tick:
				}
			}
			select {
			case <-ctx.Done():
				return
			case ch <- i:
			}
		}
	}()
	return ch
}

func (s *Simulator) loadTarget(cfg LoadConfig, i int) target {
	flag := koogallery.TestFlag("")
	if cfg.Test {
		flag = koogallery.TestFlagDebug
	}
	var req koogallery.BasicRequest
	switch cfg.Activity {
	case koogallery.ActivityQueryInstance:
		req = &koogallery.QueryInstanceRequest{InstanceID: cfg.InstanceID, TestFlag: flag}
	case koogallery.ActivityUpdateInstanceStatus:
		ids := strings.Split(cfg.InstanceID, ",")
		status := koogallery.StatusFreeze
		if (i/len(ids))%2 == 1 {
			status = koogallery.StatusUnfreeze
		}
		req = &koogallery.UpdateInstanceStatusRequest{InstanceID: strings.TrimSpace(ids[i%len(ids)]), Status: status, TestFlag: flag}
	case koogallery.ActivityRefreshInstance:
		ids := strings.Split(cfg.InstanceID, ",")
		order := loadOrder(cfg, i)
		// A renewal order of its own per call, and an expiry that differs from every other
		// call's, so that each call changes the instance rather than repeating a renewal.
		expire := time.Now().AddDate(1, 0, 0).Add(time.Duration(i) * time.Second)
		req = &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: order, OrderLineID: MockLineID(order),
			InstanceID: strings.TrimSpace(ids[i%len(ids)]), ExpireTime: koogallery.FormatExpireTime(expire), TestFlag: flag}
	default:
		order := loadOrder(cfg, i)
		req = &koogallery.NewInstanceRequest{OrderID: order, OrderLineID: MockLineID(order), BusinessID: newBusinessID(), TestFlag: flag}
	}
	body, _ := koogallery.MarshalRequest(req) // plain string fields always encode
	return target{activity: req.ActivityName(), body: body}
}

func loadOrder(cfg LoadConfig, i int) string {
	if cfg.OrderPrefix == "" {
		return LoadOrderID("LOAD", i)
	}
	return LoadOrderID(cfg.OrderPrefix, i)
}

// LoadOrderID is the order ID of newInstance call i of a load run with the given prefix.
func LoadOrderID(prefix string, i int) string { return fmt.Sprintf("%s%012d", prefix, i) }

type loadAggregate struct {
	mu        sync.Mutex
	sent, ok  int
	codes     map[string]int
	latencies []time.Duration
}

func (a *loadAggregate) add(accepted bool, ex Exchange) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent++
	ok := accepted && (ex.ResultCode == koogallery.ResultSuccess || ex.ResultCode == koogallery.ResultProcessing)
	if ok {
		a.ok++
	}
	code := ex.ResultCode
	if code == "" {
		code = "error"
	}
	a.codes[code]++
	if ex.HTTPStatus != 0 && len(a.latencies) < maxLatencySamples {
		a.latencies = append(a.latencies, ex.Latency)
	}
}

func (a *loadAggregate) result(elapsed time.Duration) *LoadResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := &LoadResult{Sent: a.sent, Succeeded: a.ok, Failed: a.sent - a.ok, Codes: a.codes, Elapsed: elapsed}
	if elapsed > 0 {
		r.PerSecond = float64(a.sent) / elapsed.Seconds()
	}
	r.SetLatencies(a.latencies)
	return r
}

// SetLatencies sets the percentiles, maximum and mean from the calls' latencies, which it sorts;
// none leaves them zero.
func (r *LoadResult) SetLatencies(l []time.Duration) {
	if len(l) == 0 {
		return
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	pct := func(p float64) time.Duration { return l[int(p*float64(len(l)-1))] }
	r.P50, r.P90, r.P95, r.P99, r.Max = pct(0.50), pct(0.90), pct(0.95), pct(0.99), l[len(l)-1]
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	r.Mean = sum / time.Duration(len(l))
}
