package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/controllers/instance"
	"github.com/marketplace-operator/marketplace-operator/controllers/plan"
	"github.com/marketplace-operator/marketplace-operator/controllers/usage"
	"github.com/marketplace-operator/marketplace-operator/internal/keys"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/internal/metricsauth"
	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
	"github.com/marketplace-operator/marketplace-operator/internal/version"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/render"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// The secure metrics endpoint authenticates its callers (TokenReview) and authorises them
// (SubjectAccessReview).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

type options struct {
	version                bool
	kubeconfig             string
	metricsAddr, probeAddr string
	pprofAddr              string
	metricsSecure          bool
	leaderElect            bool
	leaderElectionNS       string
	qps                    float64
	burst                  int
	apiURL                 string
	shutdownTimeout        time.Duration
	reconciler             instance.Options
	usage                  usage.Options
	ingressNamespaces      string
	egressExcept           string
	bindableClusterRoles   string
	syncPeriod             time.Duration
	marketplace            webhook.Options
	zap                    zap.Options
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.BoolVar(&o.version, "version", false, "print the version, source commit and Go release, and exit")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config, then $KUBECONFIG, then ~/.kube/config")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "address of the metrics endpoint; \"0\" disables it")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of net/http/pprof, unauthenticated: keep it on loopback; \"0\" disables it")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "serve metrics over HTTPS to authenticated, authorised callers only")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz probes")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect one replica to run the reconcilers (the marketplace endpoint runs on every replica)")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's namespace)")
	fs.Float64Var(&o.qps, "kube-api-qps", 200, "client-side rate limit of the reconcilers' Kubernetes API requests per second (the API server's priority and fairness protects it too)")
	fs.IntVar(&o.burst, "kube-api-burst", 400, "client-side burst of the reconcilers' Kubernetes API requests")
	fs.IntVar(&o.reconciler.MaxConcurrentReconciles, "max-concurrent-reconciles", 4, "MarketplaceInstance reconcile workers")
	fs.DurationVar(&o.reconciler.FreezeGrace, "freeze-grace", time.Hour, "how long past spec.expireTime an instance runs before freezing itself")
	fs.DurationVar(&o.reconciler.OrderQueryTimeout, "order-query-timeout", 10*time.Second, "timeout of one Query Order call")
	fs.DurationVar(&o.reconciler.OrderRecheckInterval, "order-recheck-interval", 24*time.Hour, "how often a resolved order is asked of Query Order again, to act on what a lost callback would have said (negative: never)")
	fs.Float64Var(&o.reconciler.OrderRecheckQPS, "order-recheck-qps", 0.2, "order re-checks per second, all instances together")
	fs.DurationVar(&o.usage.Interval, "usage-push-interval", usage.DefaultInterval,
		"metering period of pay-per-use tenants: their usage is pushed to KooGallery once per period")
	fs.IntVar(&o.usage.MaxConcurrentReconciles, "usage-push-workers", 2,
		"pay-per-use instances metered and pushed at once; each push waits on KooGallery, so many metered instances need more")
	fs.StringVar(&o.ingressNamespaces, "ingress-namespaces", "", "comma-separated namespaces allowed to reach every tenant (the ingress controller's)")
	fs.StringVar(&o.egressExcept, "tenant-egress-except", strings.Join(render.DefaultEgressExcept, ","),
		"comma-separated CIDRs tenants may not reach: the cluster's pod, service and node networks, the API server, link-local (cloud metadata)")
	fs.StringVar(&o.bindableClusterRoles, "tenant-bindable-clusterroles", "",
		"comma-separated ClusterRoles that plans may bind to tenant ServiceAccounts; the manager needs `bind` on each (Helm: tenantRBAC.bindableClusterRoles)")
	fs.DurationVar(&o.syncPeriod, "sync-period", 10*time.Minute,
		"how often every instance is reconciled even without a change (repairs drift whose event was missed)")
	fs.StringVar(&o.apiURL, "koogallery-api-url", "https://mkt.myhuaweicloud.com", "base URL of the KooGallery open API (Query Order, usage push)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight work may take to finish on shutdown")
	o.marketplace.BindFlags(fs)
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	// Asking for the version needs no configuration, so nothing else is checked.
	if o.version {
		return o, nil
	}
	if o.usage.Interval < time.Second {
		return nil, errors.New("--usage-push-interval must be at least 1s")
	}
	if o.usage.MaxConcurrentReconciles < 1 {
		return nil, errors.New("--usage-push-workers must be at least 1")
	}
	o.reconciler.IngressNamespaces = splitList(o.ingressNamespaces)
	o.reconciler.EgressExcept = splitList(o.egressExcept)
	for _, cidr := range o.reconciler.EgressExcept {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return nil, fmt.Errorf("--tenant-egress-except: %q is not a CIDR", cidr)
		}
	}
	o.reconciler.Policy.BindableClusterRoles = splitList(o.bindableClusterRoles)
	if o.marketplace.KeysDir == "" {
		return nil, errors.New("--marketplace-keys-dir is required: the folder (a mounted Secret) with the KooGallery keys")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(2)
	}
	if o.version {
		fmt.Println(version.String())
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	ctrl.Log.Info("build", version.KeysAndValues()...)
	if soft := setMemoryLimit(os.Getenv, os.ReadFile); soft > 0 {
		ctrl.Log.Info("Go memory limit set below the container's", "bytes", soft)
	}
	if pct := setGCPercent(os.Getenv); pct > 0 {
		ctrl.Log.Info("Go collector target set (GOGC overrides it)", "percent", pct)
	}
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	cfg.UserAgent = "marketplace-operator"

	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.metricsSecure,
		// HTTP/2 stays off: it has had denial-of-service CVEs that HTTP/1.1 does not share.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}}
	if o.metricsSecure {
		metricsOpts.FilterProvider = metricsauth.Filter
	}
	gracefulShutdown := o.shutdownTimeout
	cacheOptions := managercache.Options()
	cacheOptions.SyncPeriod = &o.syncPeriod
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme.New(),
		Cache:                         cacheOptions,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		PprofBindAddress:              o.pprofAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "marketplace-operator.saas.marketplace.dev",
		LeaderElectionNamespace:       o.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &gracefulShutdown,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	if err := registerMetrics(metrics.Registry, mgr.GetCache()); err != nil {
		return err
	}
	keyStore, err := keys.NewStore(o.marketplace.KeysDir)
	if err != nil {
		return fmt.Errorf("loading keys: %w", err)
	}
	orders, err := openapi.NewClient(openapi.Config{Endpoint: o.apiURL, Credentials: keyStore.OpenAPICredentials,
		Timeout: o.reconciler.OrderQueryTimeout})
	if err != nil {
		return fmt.Errorf("creating the KooGallery open API client: %w", err)
	}
	ir := &instance.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("marketplace-operator"), Orders: orders, Clock: clock.RealClock{},
		Options: o.reconciler,
	}
	if err := ir.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the instance controller: %w", err)
	}
	if err := (&plan.Reconciler{Client: mgr.GetClient(), Policy: o.reconciler.Policy}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the plan controller: %w", err)
	}
	pusher := usagePusher{keys: keyStore.Basic, cfg: openapi.Config{Endpoint: o.apiURL, Credentials: keyStore.OpenAPICredentials,
		Timeout: o.reconciler.OrderQueryTimeout, Retries: 2}}
	ur := &usage.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Pusher: pusher, Clock: clock.RealClock{},
		Options: o.usage}
	if err := ur.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the usage controller: %w", err)
	}
	srv, err := webhook.NewServer(mgr, keyStore, orders, o.marketplace)
	if err != nil {
		return fmt.Errorf("setting up the marketplace endpoint: %w", err)
	}
	if err := mgr.Add(keyStore); err != nil {
		return fmt.Errorf("adding the key reloader: %w", err)
	}
	if err := mgr.Add(srv); err != nil {
		return fmt.Errorf("adding the marketplace endpoint: %w", err)
	}
	cached := append(managercache.ChildKinds(), &saasv1alpha1.MarketplaceInstance{})
	if err := mgr.Add(releaseAfterSync{cache: mgr.GetCache(), kinds: cached, release: freeOSMemory,
		idle: controllerIdle(metrics.Registry, instance.ControllerName)}); err != nil {
		return fmt.Errorf("adding the memory release after the cache's initial lists: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("marketplace", srv.ReadyCheck); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	ctrl.Log.Info("starting", "marketplaceAddress", o.marketplace.BindAddress, "marketplacePath", o.marketplace.Path,
		"leaderElection", o.leaderElect)
	return mgr.Start(ctx)
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}
