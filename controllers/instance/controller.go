package instance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/logging"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// Options tune the reconciler; the zero value of each field means its default.
type Options struct {
	// FreezeGrace is how long past spec.expireTime an instance keeps running before it freezes
	// itself (a lost freeze callback must not let a buyer keep using it). Default 1h.
	FreezeGrace time.Duration
	// IngressNamespaces may reach every tenant (the ingress controller's namespace).
	IngressNamespaces []string
	// EgressExcept are the address ranges tenants may not reach (the cluster's networks,
	// link-local). Default render.DefaultEgressExcept.
	EgressExcept []string
	// Policy is what plans may do beyond the tenant's own objects.
	Policy render.Policy
	// OrderQueryTimeout bounds one Query Order call. Default 10s.
	OrderQueryTimeout time.Duration
	// OrderBackoffBase is the first wait after a failed Query Order, doubled per failure up to
	// 10 min. Default 5s.
	OrderBackoffBase time.Duration
	// MaxConcurrentReconciles is the number of workers. Default 4.
	MaxConcurrentReconciles int
	// OrderRecheckInterval is how often a resolved order is asked of Query Order again, to act
	// on what a lost callback would have said (spread by up to a tenth over instances). Default
	// 24h; negative turns re-checks off.
	OrderRecheckInterval time.Duration
	// OrderRecheckQPS bounds the re-checks of all instances together, well inside the open
	// API's rate limit (they never delay a first resolution). Default 0.2 per second.
	OrderRecheckQPS float64
}

// Reconciler converges a MarketplaceInstance's tenant to its spec.
type Reconciler struct {
	Client client.Client
	// APIReader reads straight from the API server, for the few reads the label-scoped cache
	// cannot serve (live objects of kinds the cache does not hold).
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	Orders    openapi.OrderQuerier
	Clock     clock.PassiveClock
	Options   Options

	// written is the status of this reconciler's last write to each instance, until the cache
	// shows it (freshInstance).
	written writtenStatus
	// quotaWaiters are the instances a quota's update must wake (childChanged).
	quotaWaiters quotaWaiters
	// recheckLimit paces the order re-checks of all instances (Options.OrderRecheckQPS).
	recheckLimit *rate.Limiter
}

// What the reconciler needs, and why. Writes to namespaced objects are confined further, to
// tenant namespaces and the operator's own, by the ValidatingAdmissionPolicy in config/admission
// (RBAC cannot scope a verb to namespaces that do not exist yet).
//
// Instances: read and watched; finalizers added and removed by merge patch.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances,verbs=get;list;watch;patch
// Instance status: one merge patch per reconcile.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances/status,verbs=patch
// Owner references with blockOwnerDeletion on children need update on the owner's finalizers.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceinstances/finalizers,verbs=update
// Plans are what tenants are rendered from.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceplans,verbs=get;list;watch
// The tenant namespace is created, kept labelled (Pod Security) and deleted on release.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;patch;delete
// The kinds below are the tenant's own objects: the operator's (quota, limits, network policies,
// credentials) and those a plan may render (render.TenantRules lists them; test/packaging checks
// the two agree). Applied by server-side apply, pruned by delete.
// +kubebuilder:rbac:groups="",resources=resourcequotas;limitranges;secrets;services;configmaps;serviceaccounts;persistentvolumeclaims,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies;ingresses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// Roles and RoleBindings a plan renders. No bind or escalate: the API server lets the operator
// grant only what it holds itself, and bind only ClusterRoles it is given `bind` on by name
// (the chart's tenantRBAC.bindableClusterRoles).
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch;delete
// Events on instances, on transitions.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile reads like a table of contents: every step lives in its own file.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	// client-go logs what ctx writes, Secrets included, with this logger at V(8): cap it.
	ctx = ctrl.LoggerInto(ctx, logging.CapVerbosity(ctrl.LoggerFrom(ctx)))
	inst, err := r.freshInstance(ctx, req.NamespacedName)
	if inst == nil || err != nil {
		return ctrl.Result{}, err
	}
	s := newScope(inst, r.Clock.Now())
	defer func() {
		if err := r.patchStatus(ctx, s); err != nil {
			retErr = errors.Join(retErr, err)
			res = ctrl.Result{}
		}
	}()

	if isPaused(inst) {
		s.setPaused(true)
		return ctrl.Result{}, nil
	}
	s.setPaused(false)

	if !inst.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	if err := r.ensureFinalizer(ctx, inst); err != nil {
		return ctrl.Result{}, err
	}
	return r.reconcileNormal(ctx, s)
}

// freezeUnresolved freezes a tenant whose order cannot be resolved now (Query Order failing, a
// change to a SKU no plan serves, a pinned plan deleted) on the plan it last ran, or from its
// inventory when that plan is gone too: a freeze never waits on Query Order or on a plan. Nothing is unfrozen or provisioned until the order resolves.
func (r *Reconciler) freezeUnresolved(ctx context.Context, s *scope) error {
	if !s.frozen || s.inst.Status.Namespace == "" {
		return nil
	}
	plan, err := r.appliedPlan(ctx, s)
	if err != nil {
		return err
	}
	if err := r.ensureEntitlement(ctx, s, s.inst.Status.Plan); err != nil {
		return err
	}
	if plan == nil {
		return r.freezeInventory(ctx, s)
	}
	if err := r.ensureNetworkPolicies(ctx, s, plan); err != nil {
		return err
	}
	return r.ensureWorkload(ctx, s, plan)
}

// freshInstance reads the instance from the cache, unless the cache does not show this
// reconciler's last status write to it yet: a pass on that older copy would compute, and write
// back, what the status said before. Then it reads the API server's copy. nil: it is gone.
func (r *Reconciler) freshInstance(ctx context.Context, key client.ObjectKey) (*saasv1alpha1.MarketplaceInstance, error) {
	inst := &saasv1alpha1.MarketplaceInstance{}
	err := r.Client.Get(ctx, key, inst)
	if err == nil && !r.written.shownBy(inst) {
		err = r.APIReader.Get(ctx, key, inst)
	}
	if apierrors.IsNotFound(err) {
		r.written.forget(key.Name)
		r.quotaWaiters.done(key.Name)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting instance: %w", err)
	}
	return inst, nil
}

// reconcileNormal runs the steps of a live instance in order; a step that cannot finish yet
// stops the pass and says when to come back.
func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) (ctrl.Result, error) {
	plan, res, err := r.ensureOrder(ctx, s)
	// After the order: its expiry, just resolved or re-checked, may end the paid period.
	s.frozen = r.frozen(s)
	if err != nil {
		return res, err
	}
	if plan == nil {
		if err := r.freezeUnresolved(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
	}
	if s.inst.Spec.Order.TestFlag {
		s.setDebugOrder()
		return ctrl.Result{}, nil
	}
	plan, err = r.ensurePlanFits(ctx, s, plan)
	if err != nil {
		return ctrl.Result{}, err
	}
	steps := []func(context.Context, *scope, *saasv1alpha1.MarketplacePlan) error{
		r.ensureNamespace,
		r.ensureQuota,
		r.ensureNetworkPolicies,
		r.ensureCredentials,
		func(ctx context.Context, s *scope, plan *saasv1alpha1.MarketplacePlan) error {
			return r.ensureEntitlement(ctx, s, plan.Name)
		},
		r.ensureWorkload,
		r.ensureReadiness,
	}
	for _, step := range steps {
		if err := step(ctx, s, plan); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}
