package webhook

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// Defaults of Options.
const (
	DefaultBindAddress = ":8090"
	DefaultPath        = "/saasproduce"
	// DefaultMaxBodyBytes bounds a basic request: the largest legitimate one, a queryInstance
	// with 100 IDs, is under 8 KiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxKitBodyBytes bounds a kit request: allOrgSync carries a whole department tree.
	DefaultMaxKitBodyBytes = 4 << 20
	// DefaultCallTimeout leaves a margin under KooGallery's 5 s client timeout, so a slow API
	// server yields a 000005 KooGallery retries rather than a timeout it counts as a failure.
	DefaultCallTimeout = 4 * time.Second
	// DefaultOrderChangeWait lets a plan change that needs no rollout be answered as done in the
	// same call, well inside the call timeout.
	DefaultOrderChangeWait = 2 * time.Second
	// DefaultReadTimeout bounds reading a whole request, headers and body, and
	// DefaultReadHeaderTimeout its headers (or the wait for the first request of a connection):
	// KooGallery gives up after 5 s, so a request still arriving then is answered to no one.
	DefaultReadTimeout       = 5 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection idle this long.
	DefaultIdleTimeout     = 30 * time.Second
	DefaultShutdownTimeout = 20 * time.Second
	// DefaultMaxConnections bounds the connections served at once; more wait to be accepted.
	// KooGallery makes a few calls a second.
	DefaultMaxConnections = 64
	// DefaultMaxBufferedBodyBytes bounds the request bodies over 64 KiB held in memory at once,
	// all calls together: four of the largest kit bodies.
	DefaultMaxBufferedBodyBytes = 4 * DefaultMaxKitBodyBytes
	// DefaultKubeAPIQPS and DefaultKubeAPIBurst allow a few writes per callback at the
	// marketplace's peak rates without throttling.
	DefaultKubeAPIQPS   = 200
	DefaultKubeAPIBurst = 400
	// DefaultMaxUnresolvedInstances is how many instances may wait for an order Query Order does
	// not resolve before newInstance refuses new ones: far more than a burst of real purchases
	// during a Query Order outage, far less than what would strain etcd.
	DefaultMaxUnresolvedInstances = 500
	// NoUnresolvedLimit (any negative value) turns the limit off.
	NoUnresolvedLimit = -1
	// DefaultDebugFrontEndURL is the frontEndUrl answered for debug instances: the reserved
	// .invalid domain says plainly that nothing was provisioned behind it.
	DefaultDebugFrontEndURL = "https://debug-instance.invalid/"
)

// Options configure the marketplace endpoint. cmd/manager binds them to flags with BindFlags;
// zero values take the defaults above.
type Options struct {
	// BindAddress is where the endpoint listens (--marketplace-bind-address).
	BindAddress string
	// Path is the production path of the basic activities (--marketplace-path). Kit syncs are
	// served at /produceAPI/v2/<sync> and at Path + /produceAPI/v2/<sync>.
	Path string
	// KeysDir is the mounted Secret with the keys (--marketplace-keys-dir); see internal/keys.
	KeysDir string
	// TLSCertFile and TLSKeyFile enable TLS when both are set; plain HTTP otherwise (behind
	// the cluster's ingress).
	TLSCertFile, TLSKeyFile string
	// AllowDebugProvisioning handles debug calls (testFlag=1) like production calls, creating
	// MarketplaceInstances marked testFlag (--marketplace-provision-debug-orders). Off, debug
	// calls are verified and answered but create and change nothing.
	AllowDebugProvisioning bool
	// AppInfoEncryptType encrypts appInfo.userName/password in queryInstance replies with the
	// basic key (§3): "" plain (the V2 default), "1" AES-256, "2" AES-128
	// (--marketplace-appinfo-encrypt-type).
	AppInfoEncryptType koogallery.EncryptType
	// MaxBodyBytes and MaxKitBodyBytes bound request bodies; larger ones are answered 000002.
	MaxBodyBytes, MaxKitBodyBytes int64
	// MaxBufferedBodyBytes bounds the bodies over 64 KiB held in memory at once, all calls
	// together (--marketplace-max-buffered-body-bytes). A call whose body would exceed it is
	// answered 000005 without reading the body; smaller bodies are bounded by MaxConnections.
	MaxBufferedBodyBytes int64
	// MaxConnections bounds the connections served at once (--marketplace-max-connections);
	// further ones wait in the listen backlog until one closes.
	MaxConnections int
	// MaxConcurrentVerifications bounds the signature checks running at once
	// (--marketplace-max-concurrent-verifications); one that waits for a slot more than a second
	// is answered 000005.
	MaxConcurrentVerifications int
	// TimestampWindow is how far a signed timestamp may be from now (default 60 s).
	TimestampWindow time.Duration
	// CallTimeout bounds the work of one call (API server round trips, Query Order).
	CallTimeout time.Duration
	// ReadTimeout bounds reading a request, headers and body (--marketplace-read-timeout): a slow
	// body is cut and answered 000002. ReadHeaderTimeout bounds the headers and the wait for a
	// connection's first request (--marketplace-read-header-timeout; at most ReadTimeout when
	// unset). WriteTimeout bounds writing the reply.
	ReadTimeout, ReadHeaderTimeout, WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (--marketplace-idle-timeout).
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight calls may finish once the manager stops.
	ShutdownTimeout time.Duration
	// KubeAPIQPS and KubeAPIBurst are the client-side rate limit of the endpoint's own
	// Kubernetes client. It is separate from the reconcilers' so that a provisioning backlog
	// never queues a callback behind it (--marketplace-kube-api-qps, --marketplace-kube-api-burst).
	KubeAPIQPS   float64
	KubeAPIBurst int
	// MaxUnresolvedInstances caps the instances whose order Query Order does not resolve
	// (OrderResolved False, reason OrderNotFound or OrderQueryFailed): at the cap, newInstance
	// answers 000005 instead of creating another one, and KooGallery retries. Counted in the
	// cache; a negative value (NoUnresolvedLimit) turns the cap off
	// (--marketplace-max-unresolved-instances, where 0 turns it off).
	MaxUnresolvedInstances int
	// OrderChangeWait is how long a call that changes the order (upgradeInstance, a refresh with
	// a new order) waits for the reconciler to deliver it before answering 000004, which
	// KooGallery calls again (--marketplace-order-change-wait; at most CallTimeout).
	OrderChangeWait time.Duration
	// DebugFrontEndURL is the frontEndUrl of debug instances in queryInstance replies.
	DebugFrontEndURL string
	// Clock returns now; time.Now when nil. Tests move it.
	Clock func() time.Time
}

// BindFlags registers the stable flags with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.BindAddress, "marketplace-bind-address", DefaultBindAddress, "Address the KooGallery marketplace endpoint listens on.")
	fs.StringVar(&o.Path, "marketplace-path", DefaultPath, "Production path of the KooGallery basic activities.")
	fs.StringVar(&o.KeysDir, "marketplace-keys-dir", "", "Directory (a mounted Secret) with the files basic, kit, ak, sk and optionally basic.previous, kit.previous and kit-rsa.pem.")
	fs.StringVar(&o.TLSCertFile, "marketplace-tls-cert-file", "", "TLS certificate of the marketplace endpoint; plain HTTP when empty.")
	fs.StringVar(&o.TLSKeyFile, "marketplace-tls-key-file", "", "TLS private key of the marketplace endpoint.")
	fs.BoolVar(&o.AllowDebugProvisioning, "marketplace-provision-debug-orders", false, "Create MarketplaceInstances for KooGallery debug calls (testFlag=1) instead of only verifying and answering them.")
	fs.Func("marketplace-appinfo-encrypt-type", `Encrypt appInfo credentials: "" plain (default), "1" AES-256, "2" AES-128.`, func(v string) error {
		switch t := koogallery.EncryptType(v); t {
		case koogallery.EncryptNone, koogallery.EncryptAES256, koogallery.EncryptAES128:
			o.AppInfoEncryptType = t
			return nil
		}
		return errors.New(`must be "", "1" or "2"`)
	})
	fs.Int64Var(&o.MaxBodyBytes, "marketplace-max-body-bytes", DefaultMaxBodyBytes, "Largest basic request body accepted.")
	fs.Int64Var(&o.MaxKitBodyBytes, "marketplace-max-kit-body-bytes", DefaultMaxKitBodyBytes, "Largest kit sync request body accepted.")
	fs.Int64Var(&o.MaxBufferedBodyBytes, "marketplace-max-buffered-body-bytes", DefaultMaxBufferedBodyBytes, "Request bodies over 64 KiB held in memory at once, all calls together; a call that would exceed it is answered 000005 unread.")
	fs.IntVar(&o.MaxConnections, "marketplace-max-connections", DefaultMaxConnections, "Connections to the marketplace endpoint served at once; further ones wait to be accepted.")
	fs.IntVar(&o.MaxConcurrentVerifications, "marketplace-max-concurrent-verifications", koogallery.DefaultMaxConcurrent, "Request signatures checked at once; a request that waits more than a second for its turn is answered 000005.")
	fs.DurationVar(&o.ReadTimeout, "marketplace-read-timeout", DefaultReadTimeout, "Time to read a whole request, headers and body; a slower one is cut.")
	fs.DurationVar(&o.ReadHeaderTimeout, "marketplace-read-header-timeout", DefaultReadHeaderTimeout, "Time to read a request's headers, and for a new connection to send its first request.")
	fs.DurationVar(&o.IdleTimeout, "marketplace-idle-timeout", DefaultIdleTimeout, "Keep-alive connections idle this long are closed.")
	fs.DurationVar(&o.TimestampWindow, "marketplace-timestamp-window", koogallery.DefaultWindow, "How far a request's signed timestamp may be from now.")
	fs.Float64Var(&o.KubeAPIQPS, "marketplace-kube-api-qps", DefaultKubeAPIQPS, "Client-side rate limit of the marketplace endpoint's Kubernetes API requests per second (apart from the reconcilers').")
	fs.IntVar(&o.KubeAPIBurst, "marketplace-kube-api-burst", DefaultKubeAPIBurst, "Client-side burst of the marketplace endpoint's Kubernetes API requests.")
	fs.DurationVar(&o.OrderChangeWait, "marketplace-order-change-wait", DefaultOrderChangeWait, "How long upgradeInstance (and a refreshInstance that changes the order) waits for the tenant to run the new order before answering 000004, for KooGallery to call again.")
	o.MaxUnresolvedInstances = DefaultMaxUnresolvedInstances
	fs.Var((*unresolvedLimit)(&o.MaxUnresolvedInstances), "marketplace-max-unresolved-instances",
		"How many instances may wait for an order Query Order does not resolve before newInstance answers 000005 (retry later) instead of creating another; 0 for no limit.")
}

func (o *Options) setDefaults() {
	setDefault(&o.BindAddress, DefaultBindAddress)
	setDefault(&o.Path, DefaultPath)
	setDefault(&o.DebugFrontEndURL, DefaultDebugFrontEndURL)
	setDefault(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&o.MaxKitBodyBytes, DefaultMaxKitBodyBytes)
	setDefault(&o.TimestampWindow, koogallery.DefaultWindow)
	setDefault(&o.CallTimeout, DefaultCallTimeout)
	setDefault(&o.MaxBufferedBodyBytes, DefaultMaxBufferedBodyBytes)
	setDefault(&o.MaxConnections, DefaultMaxConnections)
	setDefault(&o.MaxConcurrentVerifications, koogallery.DefaultMaxConcurrent)
	setDefault(&o.ReadTimeout, DefaultReadTimeout)
	setDefault(&o.ReadHeaderTimeout, min(DefaultReadHeaderTimeout, o.ReadTimeout))
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.IdleTimeout, DefaultIdleTimeout)
	setDefault(&o.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&o.KubeAPIQPS, DefaultKubeAPIQPS)
	setDefault(&o.KubeAPIBurst, DefaultKubeAPIBurst)
	setDefault(&o.MaxUnresolvedInstances, DefaultMaxUnresolvedInstances)
	setDefault(&o.OrderChangeWait, min(DefaultOrderChangeWait, o.CallTimeout/2))
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (o *Options) validate() error {
	if !strings.HasPrefix(o.Path, "/") {
		return fmt.Errorf("marketplace path %q must start with /", o.Path)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("set both the marketplace TLS certificate and key files, or neither")
	}
	if _, err := koogallery.CredentialKey("", o.AppInfoEncryptType); err != nil {
		return fmt.Errorf("appInfo encrypt type: %w", err)
	}
	if o.MaxConnections < 1 || o.MaxConcurrentVerifications < 1 || o.MaxBodyBytes < 1 || o.MaxKitBodyBytes < 1 {
		return errors.New("the marketplace connection, verification and body limits must be positive")
	}
	if o.MaxBufferedBodyBytes < max(o.MaxBodyBytes, o.MaxKitBodyBytes) {
		return errors.New("the marketplace buffered-body limit must hold at least one body of the largest size accepted")
	}
	if o.ReadTimeout < 0 || o.ReadHeaderTimeout < 0 || o.IdleTimeout < 0 {
		return errors.New("the marketplace timeouts must not be negative")
	}
	return nil
}

// unresolvedLimit is the flag of Options.MaxUnresolvedInstances: 0 on the command line turns the
// limit off, which Options spells NoUnresolvedLimit (its zero value takes the default).
type unresolvedLimit int

func (l *unresolvedLimit) String() string {
	if l == nil || *l < 0 {
		return "0"
	}
	return strconv.Itoa(int(*l))
}

func (l *unresolvedLimit) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return errors.New("must be a whole number, 0 for no limit")
	}
	if n == 0 {
		n = NoUnresolvedLimit
	}
	*l = unresolvedLimit(n)
	return nil
}
