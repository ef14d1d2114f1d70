package usage

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/logging"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// Defaults of Options.
const (
	DefaultInterval    = time.Hour
	DefaultPushTimeout = 30 * time.Second
	maxBackoff         = 10 * time.Minute
)

// Pusher sends usage records to KooGallery's usage push API; openapi.Client is one.
type Pusher interface {
	PushUsage(ctx context.Context, records []openapi.UsageRecord) error
}

// Options tune the reconciler; the zero value of each field means its default.
type Options struct {
	// Interval is the metering period: usage is pushed once per period. Default 1h.
	Interval time.Duration
	// PushTimeout bounds one push, its own retries included. Default 30s.
	PushTimeout time.Duration
	// BackoffBase is the first wait after a failed push, doubled per failure up to 10 min.
	// Default a tenth of Interval.
	BackoffBase time.Duration
	// MaxConcurrentReconciles is the number of workers. Default 2.
	MaxConcurrentReconciles int
}

func (o *Options) setDefaults() {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.PushTimeout <= 0 {
		o.PushTimeout = DefaultPushTimeout
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = max(time.Second, o.Interval/10)
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 2
	}
}

// Reconciler meters the pay-per-use instances and pushes their usage.
type Reconciler struct {
	Client client.Client
	// APIReader reads the application's usage ConfigMap, a kind the manager does not cache.
	APIReader client.Reader
	Pusher    Pusher
	Clock     clock.PassiveClock
	Options   Options

	behind behindGauge
}

// What the usage controller needs, and why (the instance controller needs most of it too).
//
// Instances are read and watched; the usage finalizer is added and removed by JSON patch.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances,verbs=get;list;watch;patch
// The ledger, status.usage, is written by merge patch with optimistic lock.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances/status,verbs=patch
// The plan says whether and how its tenants are metered.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceplans,verbs=get;list;watch
// The application's usage ConfigMap is created, read (from the API server) and its finalizer patched.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;patch
// The Role and RoleBinding that let the tenant's ServiceAccount patch that one ConfigMap.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;create;patch

// Reconcile reads like a table of contents: every step lives in its own file.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ctx = ctrl.LoggerInto(ctx, logging.CapVerbosity(ctrl.LoggerFrom(ctx)))
	inst := &saasv1alpha1.MarketplaceInstance{}
	if err := r.Client.Get(ctx, req.NamespacedName, inst); err != nil {
		if apierrors.IsNotFound(err) {
			r.behind.set(req.Name, 0)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	metering, err := r.metering(ctx, inst)
	if err != nil {
		return ctrl.Result{}, err
	}
	if inst.Spec.Order.TestFlag || (metering == nil && inst.Status.Usage == nil) {
		return ctrl.Result{}, r.release(ctx, inst)
	}
	o, err := r.observe(ctx, inst, metering)
	if err != nil {
		return ctrl.Result{}, err
	}
	if inst.Status.Usage == nil {
		return r.start(ctx, inst, metering, o)
	}
	// A ledger whose plan is no longer metered only sends what it had closed.
	l, u, behind := r.ledgerOf(inst, metering), inst.Status.Usage, 0
	if metering != nil {
		u, behind = l.advance(inst.Status.Usage, o)
	}
	fresh, err := r.closeUsage(ctx, inst, u)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.push(ctx, inst, l, o.now, fresh); err != nil {
		return ctrl.Result{}, err
	}
	r.behind.set(inst.Name, behind+len(inst.Status.Usage.Pending))
	if !o.releasedAt.IsZero() {
		if !done(inst.Status.Usage, o.releasedAt) && (metering != nil || len(inst.Status.Usage.Pending) > 0) {
			return ctrl.Result{RequeueAfter: r.wait(inst.Status.Usage, o.now, behind)}, nil
		}
		return ctrl.Result{}, r.release(ctx, inst)
	}
	return ctrl.Result{RequeueAfter: r.wait(inst.Status.Usage, o.now, behind)}, nil
}

// start opens the ledger once the tenant first becomes Ready; the finalizer comes first, so the
// last period of a ledger is always pushed.
func (r *Reconciler) start(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, m *saasv1alpha1.MeteringSpec, o observation) (ctrl.Result, error) {
	if !o.running || m == nil {
		return ctrl.Result{}, r.release(ctx, inst)
	}
	if err := r.addFinalizer(ctx, inst); err != nil {
		return ctrl.Result{}, err
	}
	l := r.ledgerOf(inst, m)
	if _, err := r.closeUsage(ctx, inst, l.start(o)); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.wait(inst.Status.Usage, o.now, 0)}, nil
}

func (r *Reconciler) ledgerOf(inst *saasv1alpha1.MarketplaceInstance, m *saasv1alpha1.MeteringSpec) ledger {
	l := ledger{instanceID: inst.Spec.InstanceID, interval: r.Options.Interval, source: saasv1alpha1.MeteringRunningTime}
	if m != nil {
		l.source = m.Source
	}
	return l
}

// metering is the metering of the plan the tenant runs, nil when it is not pay-per-use.
func (r *Reconciler) metering(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) (*saasv1alpha1.MeteringSpec, error) {
	if inst.Status.Plan == "" {
		return nil, nil
	}
	plan := &saasv1alpha1.MarketplacePlan{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: inst.Status.Plan}, plan); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("getting plan %s: %w", inst.Status.Plan, err)
	}
	return plan.Spec.Metering, nil
}

// observe is what this pass sees: the time, whether the tenant runs and since when, its release,
// and the application's report (AppReported), whose channel it keeps in place.
func (r *Reconciler) observe(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, m *saasv1alpha1.MeteringSpec) (observation, error) {
	o := observation{now: r.Clock.Now().UTC().Truncate(time.Second)}
	if ts := inst.DeletionTimestamp; ts != nil {
		o.releasedAt = ts.UTC().Truncate(time.Second)
		o.since = o.releasedAt
	} else if c := meta.FindStatusCondition(inst.Status.Conditions, saasv1alpha1.ConditionReady); c != nil {
		o.running = c.Status == metav1.ConditionTrue
		o.since = c.LastTransitionTime.UTC().Truncate(time.Second)
	}
	if o.since.IsZero() || o.since.After(o.now) {
		o.since = o.now
	}
	if m == nil || m.Source != saasv1alpha1.MeteringAppReported {
		return o, nil
	}
	reported, err := r.ensureChannel(ctx, inst, m, o)
	o.reported = reported
	return o, err
}

// wait is how long until the next period ends, or the push backoff is over, or at once when
// periods are still waiting to be closed.
func (r *Reconciler) wait(u *saasv1alpha1.UsageStatus, now time.Time, behind int) time.Duration {
	if behind > 0 {
		return time.Second
	}
	d := now.Truncate(r.Options.Interval).Add(r.Options.Interval).Sub(now)
	if len(u.Pending) > 0 {
		d = time.Second
		if u.NextAttemptTime != nil {
			d = max(d, u.NextAttemptTime.Sub(now))
		}
	}
	// The Ready condition's timestamps have second precision: wake just after the boundary.
	return d + 50*time.Millisecond
}
