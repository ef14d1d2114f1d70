package plan

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// Reconciler validates MarketplacePlans.
type Reconciler struct {
	Client client.Client
	// Policy is what the platform team allows plans beyond their own objects (the same the
	// instance reconciler renders with), so a plan that breaks it is not Ready.
	Policy render.Policy
}

// Plans are read to validate them and their status written with one merge patch per change.
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceplans,verbs=get;list;watch
// +kubebuilder:rbac:groups=saas.marketplace.dev,resources=marketplaceplans/status,verbs=patch

// Reconcile sets the plan's Ready condition from render.ValidatePlan, by one status patch
// when it changed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	plan := &saasv1alpha1.MarketplacePlan{}
	if err := r.Client.Get(ctx, req.NamespacedName, plan); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := plan.DeepCopy()
	ready := metav1.Condition{Type: saasv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: saasv1alpha1.ReasonTemplatesValid, Message: "every template parses and renders", ObservedGeneration: plan.Generation}
	if err := render.ValidatePlan(plan, r.Policy); err != nil {
		ready.Status, ready.Reason = metav1.ConditionFalse, saasv1alpha1.ReasonInvalidTemplate
		ready.Message = truncate(err.Error(), 2048)
	}
	meta.SetStatusCondition(&plan.Status.Conditions, ready)
	plan.Status.ObservedGeneration = plan.Generation
	if equality.Semantic.DeepEqual(orig.Status, plan.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Client.Status().Patch(ctx, plan, client.MergeFrom(orig)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("patching plan status: %w", err))
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller; only spec changes matter.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("marketplaceplan").
		For(&saasv1alpha1.MarketplacePlan{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
