package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// targetFlags are the flags of every command that calls a production URL.
type targetFlags struct {
	url                  string
	key, kitKey          *secret
	timeout              time.Duration
	pollEvery, pollLimit time.Duration
	schedule             string
	test                 bool
}

func (a *app) targetFlags(fs *flag.FlagSet) *targetFlags {
	t := &targetFlags{}
	fs.StringVar(&t.url, "url", "", "merchant production URL (or $KOOSIM_URL)")
	t.key = a.secretFlag(fs, "key", "KOOSIM_KEY", "key bound to the basic interfaces")
	t.kitKey = a.secretFlag(fs, "kit-key", "KOOSIM_KIT_KEY", "key bound to the kit interfaces (kit syncs only)")
	fs.DurationVar(&t.timeout, "timeout", simulator.DefaultTimeout, "timeout of each call")
	fs.DurationVar(&t.pollEvery, "poll-interval", time.Second, "queryInstance poll interval after a create")
	fs.DurationVar(&t.pollLimit, "poll-timeout", 5*time.Minute, "give up polling after this long")
	fs.StringVar(&t.schedule, "retry-schedule", "", `delays between retries, e.g. "1s,2s,5s"; "documented" for KooGallery's hourly schedule; empty: no retries`)
	fs.BoolVar(&t.test, "test", false, "mark calls as debug calls (testFlag 1)")
	return t
}

func (a *app) simulator(t *targetFlags, needKit bool) (*simulator.Simulator, error) {
	if t.url == "" {
		t.url = a.getenv("KOOSIM_URL")
	}
	if t.url == "" {
		return nil, fmt.Errorf("%w: --url or $KOOSIM_URL is required", errUsage)
	}
	key, err := a.resolve(t.key)
	if err != nil {
		return nil, err
	}
	cfg := simulator.Config{ProductionURL: t.url, BasicKey: []byte(key), Timeout: t.timeout,
		PollInterval: t.pollEvery, PollTimeout: t.pollLimit, Clock: a.now}
	if needKit {
		kit, err := a.resolve(t.kitKey)
		if err != nil {
			return nil, err
		}
		cfg.KitKey = []byte(kit)
	}
	switch t.schedule {
	case "documented":
	case "":
		cfg.RetrySchedule = []time.Duration{}
	default:
		if cfg.RetrySchedule, err = durations(t.schedule); err != nil {
			return nil, err
		}
	}
	sim, err := simulator.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return sim, nil
}

func (t *targetFlags) flag() koogallery.TestFlag {
	if t.test {
		return koogallery.TestFlagDebug
	}
	return ""
}

// fieldFlags are the request fields send accepts.
type fieldFlags struct {
	orderID, lineID, businessID, instanceID, scene, expire, status string
	productID, sku, productName, bodyFile                          string
	linear                                                         int
	poll                                                           bool
}

const sendSynopsis = `send <activity> --url URL --key K [field flags]

Sends one activity signed, as KooGallery does, checks the reply's Body-Sign, prints every
exchange and the final reply. Activities: newInstance, queryInstance, refreshInstance,
updateInstanceStatus, releaseInstance, upgradeInstance, changeInstanceCheck, orderNotify, and the
kit syncs tenantSync, applicationSync, authSync, singleOrgSync, allOrgSync (kit syncs take their
body from --body-file and need --kit-key). newInstance polls queryInstance until the instance is
ready unless --poll=false.`

func (a *app) send(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := a.flagSet("send", sendSynopsis)
		a.targetFlags(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		return fmt.Errorf("%w: an activity is required", errUsage)
	}
	activity := args[0]
	fs := a.flagSet("send "+activity, sendSynopsis)
	t := a.targetFlags(fs)
	f := &fieldFlags{}
	fs.StringVar(&f.orderID, "order-id", simulator.MockPeriodYearNew, "orderId")
	fs.StringVar(&f.lineID, "order-line-id", "", "orderLineId (default: <order-id>-000001)")
	fs.StringVar(&f.businessID, "business-id", "", "businessId (default: random)")
	fs.StringVar(&f.instanceID, "instance-id", "", "instanceId (queryInstance: comma-separated)")
	fs.StringVar(&f.scene, "scene", koogallery.SceneRenewal, "refreshInstance scene")
	fs.StringVar(&f.expire, "expire-time", "", "refreshInstance expireTime, yyyyMMddHHmmss UTC (default: a year from now)")
	fs.StringVar(&f.status, "status", koogallery.StatusFreeze, "updateInstanceStatus status: FREEZE or UNFREEZE")
	fs.StringVar(&f.productID, "product-id", "", "productId (refreshInstance, changeInstanceCheck)")
	fs.StringVar(&f.sku, "sku-code", "", "changeInstanceCheck skuCode")
	fs.StringVar(&f.productName, "product-name", "", "changeInstanceCheck productName")
	fs.IntVar(&f.linear, "linear-value", -1, "changeInstanceCheck linearValue (omitted when negative)")
	fs.StringVar(&f.bodyFile, "body-file", "", "JSON body of a kit sync")
	fs.BoolVar(&f.poll, "poll", true, "newInstance: poll queryInstance until ready")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	kind, isKit := kitKind(activity)
	sim, err := a.simulator(t, isKit)
	if err != nil {
		return err
	}
	if isKit {
		err = a.sendKit(ctx, sim, kind, f.bodyFile)
	} else {
		err = a.sendBasic(ctx, sim, activity, t.flag(), f)
	}
	a.printExchanges(sim.Exchanges())
	return err
}

func kitKind(name string) (koogallery.KitKind, bool) {
	for _, k := range koogallery.KitKinds() {
		if string(k) == name {
			return k, true
		}
	}
	return "", false
}

func (a *app) sendKit(ctx context.Context, sim *simulator.Simulator, kind koogallery.KitKind, bodyFile string) error {
	body, err := a.readBody(bodyFile)
	if err != nil {
		return err
	}
	req, err := koogallery.ParseKitRequest(kind, body)
	if err != nil {
		return fmt.Errorf("%w: kit body: %w", errUsage, err)
	}
	resp, err := sim.SendKit(ctx, req)
	if err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	fmt.Fprintf(a.stdout, "%s\n", resp.Body)
	return nil
}

func (a *app) sendBasic(ctx context.Context, sim *simulator.Simulator, activity string, flag koogallery.TestFlag, f *fieldFlags) error {
	if activity == koogallery.ActivityNewInstance && f.poll {
		res, err := sim.NewInstance(ctx, koogallery.NewInstanceRequest{OrderID: f.orderID, OrderLineID: f.line(), BusinessID: f.business(), TestFlag: flag})
		if err != nil {
			return fmt.Errorf("sending: %w", err)
		}
		b, _ := json.MarshalIndent(res.Final, "", "  ") // a decoded reply always re-encodes
		fmt.Fprintf(a.stdout, "instanceId %s ready after %d poll(s)\n%s\n", res.InstanceID, res.Polls, b)
		return nil
	}
	req, err := f.request(activity, flag, a.now())
	if err != nil {
		return err
	}
	resp, err := sim.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	fmt.Fprintf(a.stdout, "%s\n", resp.Body)
	return nil
}

func (f *fieldFlags) line() string {
	if f.lineID != "" {
		return f.lineID
	}
	return simulator.MockLineID(f.orderID)
}

func (f *fieldFlags) business() string {
	if f.businessID != "" {
		return f.businessID
	}
	return strings.ToLower(simulator.RandomNonce()[:32])
}

// request builds the typed request of a basic activity from the flags.
func (f *fieldFlags) request(activity string, flag koogallery.TestFlag, now time.Time) (koogallery.BasicRequest, error) {
	var req koogallery.BasicRequest
	switch activity {
	case koogallery.ActivityNewInstance:
		req = &koogallery.NewInstanceRequest{OrderID: f.orderID, OrderLineID: f.line(), BusinessID: f.business(), TestFlag: flag}
	case koogallery.ActivityQueryInstance:
		req = &koogallery.QueryInstanceRequest{InstanceID: f.instanceID, TestFlag: flag}
	case koogallery.ActivityRefreshInstance:
		expire := f.expire
		if expire == "" {
			expire = koogallery.FormatExpireTime(now.AddDate(1, 0, 0))
		}
		req = &koogallery.RefreshInstanceRequest{Scene: f.scene, OrderID: f.orderID, OrderLineID: f.line(), InstanceID: f.instanceID,
			ProductID: f.productID, ExpireTime: expire, TestFlag: flag}
	case koogallery.ActivityUpdateInstanceStatus:
		req = &koogallery.UpdateInstanceStatusRequest{InstanceID: f.instanceID, Status: f.status, TestFlag: flag}
	case koogallery.ActivityReleaseInstance:
		req = &koogallery.ReleaseInstanceRequest{InstanceID: f.instanceID, TestFlag: flag}
	case koogallery.ActivityUpgradeInstance:
		req = &koogallery.UpgradeInstanceRequest{InstanceID: f.instanceID, OrderID: f.orderID, OrderLineID: f.line(), TestFlag: flag}
	case koogallery.ActivityChangeInstanceCheck:
		req = &koogallery.ChangeInstanceCheckRequest{InstanceID: f.instanceID, TestFlag: flag, ProductInfo: f.product()}
	case koogallery.ActivityOrderNotify:
		if flag == "" {
			flag = koogallery.TestFlagProduction
		}
		req = &koogallery.OrderNotifyRequest{OrderID: f.orderID, OrderLineID: f.line(), TestFlag: flag}
	default:
		return nil, fmt.Errorf("%w: unknown activity %q", errUsage, activity)
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return req, nil
}

func (f *fieldFlags) product() koogallery.ProductInfo {
	p := koogallery.ProductInfo{ProductID: f.productID, SKUCode: f.sku, ProductName: f.productName}
	if f.linear >= 0 {
		p.LinearValue = koogallery.NewInt(f.linear)
	}
	return p
}

func (a *app) printExchanges(exs []simulator.Exchange) {
	tw := tabwriter.NewWriter(a.stderr, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTIVITY\tATTEMPT\tHTTP\tRESULT\tLATENCY\tERROR")
	for _, e := range exs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", e.Activity, e.Attempt, e.HTTPStatus, e.ResultCode, e.Latency.Round(time.Microsecond), e.Err)
	}
	_ = tw.Flush() // best effort: the exchange log is diagnostics on stderr
}

const lifecycleSynopsis = `lifecycle --url URL --key K [flags]

Runs create → poll → renew → freeze → unfreeze → upgrade → release and prints a table. A
pay-per-use order (--charging-mode ON_DEMAND, the default for MOCKONDEMAND) runs create → poll →
freeze → unfreeze → release: pay-per-use has no renewal or upgrade. With --openapi-url the new
instance is registered with that "koosim serve", which accepts usage only for instances it knows;
--await-usage N then waits, before the release, until N usage records for it arrived.`

func (a *app) lifecycle(ctx context.Context, args []string) error {
	fs := a.flagSet("lifecycle", lifecycleSynopsis)
	t := a.targetFlags(fs)
	var opts simulator.LifecycleOptions
	fs.StringVar(&opts.OrderID, "order-id", simulator.MockPeriodYearNew, "purchase order")
	fs.StringVar(&opts.ChargingMode, "charging-mode", "", "PERIOD or ON_DEMAND (default: ON_DEMAND for MOCKONDEMAND, else PERIOD)")
	fs.StringVar(&opts.RenewOrderID, "renew-order-id", simulator.MockMonthRenew, "renewal order")
	fs.StringVar(&opts.UpgradeOrderID, "upgrade-order-id", simulator.MockMonthChange, "upgrade order")
	openAPI := fs.String("openapi-url", "", `base URL of "koosim serve" to register the instance with (or $KOOSIM_OPENAPI_URL)`)
	await := fs.Int("await-usage", 0, "before the release, wait until this many usage records arrived (needs --openapi-url; bounded by --poll-timeout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	sim, err := a.simulator(t, false)
	if err != nil {
		return err
	}
	opts.Test = t.test
	if err := a.usageHooks(&opts, *openAPI, *await, t); err != nil {
		return err
	}
	steps, err := sim.Lifecycle(ctx, opts)
	if werr := simulator.WriteTable(a.stdout, steps); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	return nil
}

// usageHooks wires the lifecycle to a running "koosim serve": register the instance, and await
// its usage when asked to.
func (a *app) usageHooks(opts *simulator.LifecycleOptions, openAPI string, await int, t *targetFlags) error {
	if openAPI == "" {
		openAPI = a.getenv("KOOSIM_OPENAPI_URL")
	}
	switch {
	case await < 0:
		return fmt.Errorf("%w: --await-usage must not be negative", errUsage)
	case openAPI == "" && await > 0:
		return fmt.Errorf("%w: --await-usage needs --openapi-url", errUsage)
	case openAPI == "":
		return nil
	}
	dc := simulator.DebugClient{BaseURL: openAPI}
	opts.Register = func(ctx context.Context, id string, start time.Time) error {
		ctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		return dc.RegisterInstance(ctx, id, start)
	}
	if await > 0 {
		opts.BeforeRelease = func(ctx context.Context, id string) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, t.pollLimit)
			defer cancel()
			return awaitUsage(ctx, dc, id, await, t.pollEvery)
		}
	}
	return nil
}

func (a *app) serve(ctx context.Context, args []string) error {
	fs := a.flagSet("serve", "serve --ak AK --sk SK [--listen ADDR] [--usage-key K] [--orders-file F] [--any-instance]\n\n"+
		"Serves Query Order (the MOCK* orders plus --orders-file) and usage push until interrupted.\n"+
		"Usage is accepted only for instances registered through POST "+simulator.InstancesDebugPath+" (koosim lifecycle\n"+
		"--openapi-url does it) unless --any-instance; GET "+simulator.UsageDebugPath+"[/ID] (koosim usage) shows what arrived.")
	// Not 8090: that is where the manager's marketplace endpoint listens by default.
	listen := fs.String("listen", "127.0.0.1:8091", "listen address")
	ak := a.secretFlag(fs, "ak", "KOOSIM_AK", "access key ID requests must be signed with")
	sk := a.secretFlag(fs, "sk", "KOOSIM_SK", "secret access key")
	usage := a.secretFlag(fs, "usage-key", "KOOSIM_USAGE_KEY", "seller key usage pushes are signed with (optional)")
	ordersFile := fs.String("orders-file", "", "JSON array of orderInfo objects to serve besides the mock orders")
	anyInstance := fs.Bool("any-instance", false, "accept usage for instances never registered")
	if err := parse(fs, args); err != nil {
		return err
	}
	var opts []simulator.ServerOption
	if *anyInstance {
		opts = append(opts, simulator.WithAnyInstance())
	}
	srv, err := a.openAPIServer(ak, sk, usage, *ordersFile, opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(a.stdout, "serving the KooGallery open API on http://%s\n", ln.Addr())
	a.onListen(ln.Addr().String())
	go func() { //nolint:gosec // shutdown must outlive the cancelled ctx, so it gets a fresh one
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown) // the server is going away either way
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

func (a *app) openAPIServer(ak, sk, usage *secret, ordersFile string, opts ...simulator.ServerOption) (*simulator.OpenAPIServer, error) {
	akv, err := a.resolve(ak)
	if err != nil {
		return nil, err
	}
	skv, err := a.resolve(sk)
	if err != nil {
		return nil, err
	}
	if uk, err := a.resolve(usage); err == nil {
		opts = append(opts, simulator.WithUsageKey([]byte(uk)))
	}
	srv := simulator.NewOpenAPIServer(akv, skv, opts...)
	if ordersFile == "" {
		return srv, nil
	}
	b, err := os.ReadFile(ordersFile) //nolint:gosec // the user names the orders file to read
	if err != nil {
		return nil, fmt.Errorf("reading orders file: %w", err)
	}
	var orders []openapi.Order
	if err := json.Unmarshal(b, &orders); err != nil {
		return nil, fmt.Errorf("decoding orders file: %w", err)
	}
	for _, o := range orders {
		srv.RegisterOrder(o)
	}
	return srv, nil
}

func (a *app) load(ctx context.Context, args []string) error {
	fs := a.flagSet("load", "load --url URL --key K (--count N | --duration D) [--rate R] [--concurrency C]\n\n"+
		"Sends single signed calls (no retries or polling) to a loopback production URL and prints\nlatency percentiles.")
	t := a.targetFlags(fs)
	var cfg simulator.LoadConfig
	fs.IntVar(&cfg.Count, "count", 0, "number of calls")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run time")
	fs.Float64Var(&cfg.Rate, "rate", 0, "calls per second (0: as fast as possible)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 4, "workers")
	fs.StringVar(&cfg.Activity, "activity", koogallery.ActivityNewInstance, "newInstance, queryInstance, updateInstanceStatus or refreshInstance")
	fs.StringVar(&cfg.OrderPrefix, "order-prefix", "LOAD", "newInstance: call i orders PREFIX followed by i in 12 digits")
	fs.StringVar(&cfg.InstanceID, "instance-id", "", "queryInstance: the IDs asked for (up to 100, comma-separated); updateInstanceStatus: the instances frozen, then unfrozen, in turn; refreshInstance: the instances renewed in turn")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a production URL that is not loopback")
	asJSON := fs.Bool("json", false, "print the result as JSON (latencies in nanoseconds), for scripts")
	if err := parse(fs, args); err != nil {
		return err
	}
	sim, err := a.simulator(t, false)
	if err != nil {
		return err
	}
	cfg.Test = t.test
	res, err := sim.Load(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *asJSON {
		return json.NewEncoder(a.stdout).Encode(res)
	}
	fmt.Fprintf(a.stdout, "sent %d, succeeded %d, failed %d in %s (%.1f/s)\np50 %s  p90 %s  p95 %s  p99 %s  max %s  mean %s\ncodes %v\n",
		res.Sent, res.Succeeded, res.Failed, res.Elapsed.Round(time.Millisecond), res.PerSecond,
		res.P50, res.P90, res.P95, res.P99, res.Max, res.Mean, res.Codes)
	return nil
}
