package instance

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/managercache"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// ControllerName names the instance controller in its metrics (workqueue_depth's name label,
// the controller label of controller-runtime's own), which the manager reads to tell when its
// first pass over every instance has drained.
const ControllerName = "marketplaceinstance"

// Field indexes on MarketplaceInstance and MarketplacePlan.
const (
	// planSKUIndex indexes plans by each SKU they serve (render.SKUKeys).
	planSKUIndex = "spec.skus"
	// instancePlanIndex indexes instances by the plan they run or pin, and unplanned ones
	// under unplannedKey, so a plan change wakes exactly the instances it may concern.
	instancePlanIndex = "plan"
	unplannedKey      = "<none>"
)

// SetupWithManager registers the indexes and the controller.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	qps := r.Options.OrderRecheckQPS
	if qps <= 0 {
		qps = defaultOrderRecheckQPS
	}
	r.recheckLimit = rate.NewLimiter(rate.Limit(qps), 1)
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &saasv1alpha1.MarketplacePlan{}, planSKUIndex, func(o client.Object) []string {
		return render.SKUKeys(o.(*saasv1alpha1.MarketplacePlan))
	}); err != nil {
		return fmt.Errorf("indexing plans: %w", err)
	}
	if err := idx.IndexField(ctx, &saasv1alpha1.MarketplaceInstance{}, instancePlanIndex, func(o client.Object) []string {
		i := o.(*saasv1alpha1.MarketplaceInstance)
		keys := []string{}
		for _, k := range []string{i.Status.Plan, i.Spec.Plan} {
			if k != "" {
				keys = append(keys, k)
			}
		}
		if !isTrueIn(i.Status.Conditions, saasv1alpha1.ConditionOrderResolved) {
			keys = append(keys, unplannedKey)
		}
		return keys
	}); err != nil {
		return fmt.Errorf("indexing instances: %w", err)
	}

	workers := r.Options.MaxConcurrentReconciles
	if workers == 0 {
		workers = 4
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&saasv1alpha1.MarketplaceInstance{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, r.foreignStatusWrite()))).
		Watches(&saasv1alpha1.MarketplacePlan{}, handler.EnqueueRequestsFromMapFunc(r.instancesForPlan),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers})
	for _, o := range managercache.ChildKinds() {
		switch o.(type) {
		case *appsv1.Deployment, *appsv1.StatefulSet:
			b = b.Watches(o, readinessFirst(mgr.GetScheme(), mgr.GetRESTMapper()), builder.WithPredicates(childChanged(&r.quotaWaiters)))
		default:
			b = b.Owns(o, builder.WithPredicates(childChanged(&r.quotaWaiters)))
		}
	}
	return b.Complete(r)
}

// foreignStatusWrite lets through a status change that this reconciler did not write (someone
// patched the status subresource by hand): status is the reconciler's alone, and the pass puts
// it right. Its own writes coming back never start a pass, and neither do the usage controller's
// writes to status.usage, the one status field that is not the reconciler's.
func (r *Reconciler) foreignStatusWrite() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*saasv1alpha1.MarketplaceInstance)
		after, ok2 := e.ObjectNew.(*saasv1alpha1.MarketplaceInstance)
		return ok1 && ok2 && !equality.Semantic.DeepEqual(withoutUsage(before.Status), withoutUsage(after.Status)) && !r.written.wrote(after)
	}}
}

func withoutUsage(s saasv1alpha1.MarketplaceInstanceStatus) saasv1alpha1.MarketplaceInstanceStatus {
	s.Usage = nil
	return s
}

// instancesForPlan maps a plan change to the instances that run or pin it, and to those still
// waiting for a plan to serve their SKU.
func (r *Reconciler) instancesForPlan(ctx context.Context, plan client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, key := range []string{plan.GetName(), unplannedKey} {
		list := &saasv1alpha1.MarketplaceInstanceList{}
		if err := r.Client.List(ctx, list, client.MatchingFields{instancePlanIndex: key}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing instances for a plan", "plan", plan.GetName())
			continue
		}
		for _, i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&i)})
		}
	}
	return reqs
}
