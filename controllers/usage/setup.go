package usage

import (
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// SetupWithManager registers the controller. It is woken by what changes the metering (the
// tenant becoming Ready or not, its plan, its release) and otherwise by its own schedule: its
// writes to status.usage never wake it.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.Options.setDefaults()
	return ctrl.NewControllerManagedBy(mgr).
		Named("marketplaceusage").
		For(&saasv1alpha1.MarketplaceInstance{}, builder.WithPredicates(meteringChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}

func meteringChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			before, ok1 := e.ObjectOld.(*saasv1alpha1.MarketplaceInstance)
			after, ok2 := e.ObjectNew.(*saasv1alpha1.MarketplaceInstance)
			return ok1 && ok2 && meteringView(before) != meteringView(after)
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// view is what of an instance the metering depends on.
type view struct {
	ready, readySince  string
	deleting           bool
	plan, namespace    string
	generation         int64
	started, finalizer bool
}

func meteringView(i *saasv1alpha1.MarketplaceInstance) view {
	v := view{deleting: !i.DeletionTimestamp.IsZero(), plan: i.Status.Plan, namespace: i.Status.Namespace,
		generation: i.Generation, started: i.Status.Usage != nil}
	if c := meta.FindStatusCondition(i.Status.Conditions, saasv1alpha1.ConditionReady); c != nil {
		v.ready, v.readySince = string(c.Status), c.LastTransitionTime.String()
	}
	for _, f := range i.Finalizers {
		v.finalizer = v.finalizer || f == saasv1alpha1.FinalizerUsage
	}
	return v
}
