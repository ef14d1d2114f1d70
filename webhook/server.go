package webhook

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/marketplace-operator/marketplace-operator/internal/keys"
	"github.com/marketplace-operator/marketplace-operator/internal/logging"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// The webhook's own needs; the reconciler's markers cover the tenant objects it creates.
// Instances: created by newInstance, patched by the state-changing calls, deleted by
// releaseInstance, read (cached) by queryInstance.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances,verbs=get;list;watch;create;patch;delete
// Instance status: the history entry of each applied call.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances/status,verbs=get;patch
// Instance finalizers: the kit objects carry the instance's controller reference with
// blockOwnerDeletion (render.OwnerReference), which needs update on the owner's finalizers.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances/finalizers,verbs=update
// Plans: changeInstanceCheck and upgrades check the target plan.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceplans,verbs=get;list;watch
// Secrets: the tenant's credentials (queryInstance) and the kit syncs' client secrets, in tenant
// namespaces only (the admission policy in config/admission confines the writes).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// ConfigMaps: kit data and the kit replay record, in tenant namespaces only.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;patch;update
// ResourceQuotas: a downgrade check compares usage with the target plan's quota.
// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=get;list;watch
// Namespaces: a kit sync checks that the tenant namespace is the instance's before writing.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// KeySet is what the webhook needs of the keys: *keys.Store in production.
type KeySet interface {
	Basic() [][]byte
	Kit() [][]byte
	KitRSAKey() *rsa.PrivateKey
}

var _ KeySet = (*keys.Store)(nil)

// Server is the marketplace endpoint. It implements manager.Runnable.
type Server struct {
	opts     Options
	client   client.Client // the manager's client: reads from the cache, writes to the API server
	reader   client.Reader // the API server, for reads the cache cannot answer or answers late
	keys     KeySet
	orders   openapi.OrderQuerier
	verifier *koogallery.Verifier
	log      logr.Logger
	kit      *kitStore
	// written is this replica's last write to each instance, until the cache shows it.
	written *writtenCalls
	// troubles rate-limits the log lines of refused and failed calls.
	troubles logLimiter
	// bodies bounds the memory of large request bodies (readBody).
	bodies *bodyBudget
	// listening is set while the endpoint accepts connections (ReadyCheck).
	listening atomic.Bool
}

var (
	_ manager.Runnable               = (*Server)(nil)
	_ manager.LeaderElectionRunnable = (*Server)(nil)
)

// NewServer returns the endpoint for mgr and registers the field indexes it reads instances by.
// orders may be nil; debug calls then skip their Query Order check.
func NewServer(mgr manager.Manager, keyStore *keys.Store, orders openapi.OrderQuerier, opts Options) (*Server, error) {
	if keyStore == nil {
		return nil, errors.New("a key store is required")
	}
	if err := RegisterIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	opts.setDefaults()
	c, reader, err := ownClient(mgr, opts)
	if err != nil {
		return nil, err
	}
	return newServer(c, reader, keyStore, orders, mgr.GetLogger().WithName("marketplace-webhook"), opts)
}

// ownClient returns a client that reads through the manager's cache and writes, and a reader
// of the API server, both under the endpoint's own rate limit: sharing the reconcilers' would
// make a callback wait behind a provisioning backlog and KooGallery time out.
func ownClient(mgr manager.Manager, opts Options) (client.Client, client.Reader, error) {
	cfg := rest.CopyConfig(mgr.GetConfig())
	cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(float32(opts.KubeAPIQPS), opts.KubeAPIBurst)
	direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the marketplace endpoint's client: %w", err)
	}
	cached, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the marketplace endpoint's client: %w", err)
	}
	return cached, direct, nil
}

// newServer wires a Server from its parts; the benchmark builds one on an in-memory client.
func newServer(c client.Client, reader client.Reader, ks KeySet, orders openapi.OrderQuerier, log logr.Logger, opts Options) (*Server, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	// The logger goes into every call's context, with which client-go would log the Secrets the
	// call writes (kit client secrets) at V(8): cap it.
	s := &Server{opts: opts, client: c, reader: reader, keys: ks, orders: orders, log: logging.CapVerbosity(log), written: newWrittenCalls()}
	s.verifier = koogallery.NewVerifier(koogallery.VerifierConfig{
		BasicKeys: koogallery.KeyFunc(ks.Basic),
		KitKeys:   koogallery.KeyFunc(ks.Kit),
		Clock:     opts.Clock,
		Window:    opts.TimestampWindow,
		// At most this many signature checks run at once; the others wait up to a second.
		MaxConcurrent: opts.MaxConcurrentVerifications,
	})
	s.bodies = &bodyBudget{max: opts.MaxBufferedBodyBytes}
	s.kit = &kitStore{client: c, reader: reader}
	return s, nil
}

// NeedLeaderElection is false: every replica answers KooGallery.
func (s *Server) NeedLeaderElection() bool { return false }

// Handler returns the endpoint's handler, for tests and benchmarks.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Start serves until ctx ends, then stops accepting calls and lets the ones in flight finish
// (bounded by Options.ShutdownTimeout): a call cut off after it changed an instance would make
// KooGallery retry something already applied.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.BindAddress)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.opts.BindAddress, err)
	}
	s.listening.Store(true)
	defer s.listening.Store(false)
	return s.serve(ctx, ln)
}

// ReadyCheck is a readiness check (healthz.Checker): a replica is ready for KooGallery's
// traffic only once its endpoint listens.
func (s *Server) ReadyCheck(_ *http.Request) error {
	if !s.listening.Load() {
		return errors.New("the marketplace endpoint is not listening yet")
	}
	return nil
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	baseCtx := ctrl.LoggerInto(context.Background(), s.log)
	// HTTP/1.1 only: KooGallery needs nothing else, and HTTP/2 would multiplex many requests,
	// each with its own body, over one connection the listener counts once.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	ln = newLimitListener(ln, s.opts.MaxConnections)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		Protocols:         &protocols,
		// In-flight calls must not be cancelled with the manager's context: Shutdown waits for them.
		BaseContext: func(net.Listener) context.Context { return baseCtx },
		ErrorLog:    nil,
	}
	tlsOn := s.opts.TLSCertFile != ""
	if tlsOn {
		certs, err := newCertReloader(s.opts.TLSCertFile, s.opts.TLSKeyFile, s.log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	errc := make(chan error, 1)
	go func() {
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	s.log.Info("serving the marketplace endpoint", "address", ln.Addr().String(), "path", s.opts.Path, "tls", tlsOn)
	select {
	case err := <-errc:
		return fmt.Errorf("serving the marketplace endpoint: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down the marketplace endpoint: %w", err)
	}
	return nil
}

// serveHTTP routes a request: the basic activities at the production path, the kit syncs at
// their fixed sub-paths (bare, or appended to the production path).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if kind, ok := s.kitKind(r.URL.Path); ok {
		s.serve1(w, r, exchangeFor(kind))
		return
	}
	if r.URL.Path != s.opts.Path {
		http.NotFound(w, r)
		return
	}
	s.serve1(w, r, basicExchange)
}

func (s *Server) kitKind(path string) (koogallery.KitKind, bool) {
	kind, ok := koogallery.KitKindFromPath(path)
	if !ok {
		return "", false
	}
	prefix := strings.TrimSuffix(path, kind.Path())
	return kind, prefix == "" || prefix == strings.TrimSuffix(s.opts.Path, "/")
}

// serve1 runs one call: read the bounded body, verify, parse, handle, reply. Whatever happens,
// including a panic, the caller gets one signed reply, and the call is counted.
func (s *Server) serve1(w http.ResponseWriter, r *http.Request, kind exchangeKind) {
	ex := &exchange{w: w, kind: kind, activity: kind.defaultActivity(), start: time.Now()}
	if kind.kit {
		ex.key = s.kitKey
	} else {
		ex.key = s.basicKey
	}
	log := s.log.WithValues("path", r.URL.Path)
	defer func() {
		if p := recover(); p != nil {
			log.Error(fmt.Errorf("panic: %v", p), "marketplace call panicked", "activity", ex.activity)
			ex.send(internalError())
		}
		ex.observe()
		log.V(1).Info("marketplace call", "activity", ex.activity, "resultCode", ex.code, "latency", time.Since(ex.start))
		s.logFailed(log, ex)
	}()
	if r.Method != http.MethodPost {
		ex.send(reply(koogallery.ResultInvalidParam, "only POST is accepted"))
		return
	}
	limit := s.opts.MaxBodyBytes
	if kind.kit {
		limit = s.opts.MaxKitBodyBytes
	}
	body, release, err := s.readBody(w, r, limit)
	defer release()
	switch {
	case errors.Is(err, errBodyBusy):
		signatureRejections.WithLabelValues(interfaceOf(kind), string(koogallery.KindBusy)).Inc()
		ex.send(reply(koogallery.ResultInternalError, err.Error()))
		return
	case err != nil:
		ex.send(reply(koogallery.ResultInvalidParam, err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(ctrl.LoggerInto(r.Context(), log), s.opts.CallTimeout)
	defer cancel()
	if kind.kit {
		ex.send(s.handleKit(ctx, ex, r, kind.kitKind, body))
		return
	}
	ex.send(s.handleBasic(ctx, ex, r, body))
}

func (s *Server) basicKey() []byte { return first(s.keys.Basic()) }

func (s *Server) kitKey() []byte { return first(s.keys.Kit()) }

func first(ks [][]byte) []byte {
	if len(ks) == 0 {
		return nil
	}
	return ks[0]
}

// handleBasic verifies and parses a basic call, then hands it to its activity.
func (s *Server) handleBasic(ctx context.Context, ex *exchange, r *http.Request, body []byte) any {
	if err := s.verifier.VerifyBasic(r.URL.Query(), body); err != nil {
		return s.rejected(ctx, "basic", err)
	}
	req, err := koogallery.ParseBasicRequest(body)
	if req != nil {
		ex.activity = req.ActivityName()
	}
	if err != nil {
		return koogallery.NewReply(err)
	}
	// The timestamp was parsed by the verifier already; it orders calls on one instance.
	at, _ := koogallery.ParseTimestamp(r.URL.Query().Get(koogallery.ParamTimestamp))
	c := &call{activity: ex.activity, ts: at.UnixMilli(), now: s.opts.Clock(), test: req.IsTest() && !s.opts.AllowDebugProvisioning}
	return s.dispatch(ctx, c, req)
}

func (s *Server) dispatch(ctx context.Context, c *call, req koogallery.BasicRequest) any {
	switch req := req.(type) {
	case *koogallery.NewInstanceRequest:
		return s.newInstance(ctx, c, req)
	case *koogallery.QueryInstanceRequest:
		return s.queryInstance(ctx, c, req)
	case *koogallery.RefreshInstanceRequest:
		return s.refreshInstance(ctx, c, req)
	case *koogallery.UpdateInstanceStatusRequest:
		return s.updateInstanceStatus(ctx, c, req)
	case *koogallery.UpgradeInstanceRequest:
		return s.upgradeInstance(ctx, c, req)
	case *koogallery.ReleaseInstanceRequest:
		return s.releaseInstance(ctx, c, req)
	case *koogallery.ChangeInstanceCheckRequest:
		return s.changeInstanceCheck(ctx, c, req)
	case *koogallery.OrderNotifyRequest:
		return s.orderNotify(ctx, c, req)
	}
	return reply(koogallery.ResultInvalidParam, "unknown activity")
}

// rejected answers a request that failed verification, counts it by reason and logs it
// (rate-limited; the line names the reason, never a key, a signature or the body).
func (s *Server) rejected(ctx context.Context, iface string, err error) any {
	kind := koogallery.KindOf(err)
	reason := rejectionReason(kind)
	signatureRejections.WithLabelValues(iface, reason).Inc()
	if ok, held := s.troubles.allow("refused/"+iface+"/"+reason, s.opts.Clock()); ok {
		ctrl.LoggerFrom(ctx).Info("marketplace call refused", "interface", iface, "reason", reason, "heldBackSinceLastLine", held)
	}
	return verificationReply(err)
}

// logFailed logs, rate-limited, a verified call answered with a failure: anything but success
// and provisioning. Refusals were logged with their reason (rejected); the causes of internal
// errors are logged where they happen.
func (s *Server) logFailed(log logr.Logger, ex *exchange) {
	switch ex.code {
	case koogallery.ResultSuccess, koogallery.ResultProcessing, koogallery.ResultAuthFailed:
		return
	}
	if ok, held := s.troubles.allow("failed/"+ex.activity+"/"+ex.code, s.opts.Clock()); ok {
		log.Info("marketplace call failed", "activity", ex.activity, "resultCode", ex.code, "heldBackSinceLastLine", held)
	}
}

// call is what every activity handler knows about the request besides its body.
type call struct {
	activity string
	// ts is the signed timestamp in Unix milliseconds; it orders calls on one instance.
	ts  int64
	now time.Time
	// test is a debug call handled without changing anything.
	test bool
}
