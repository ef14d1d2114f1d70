package usage

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// FieldOwner is the usage controller's server-side apply field manager.
const FieldOwner = "marketplace-operator-usage"

// ensureChannel keeps the application's usage channel in the tenant namespace (the ConfigMap,
// and the Role and RoleBinding that let the tenant's ServiceAccount get and patch it and nothing
// else) and returns the cumulative value reported there: nil when there is none to read. The
// ConfigMap is created once, with value 0, and never applied again: its value is the
// application's. A value that is not a decimal is ignored until it is one.
func (r *Reconciler) ensureChannel(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, m *saasv1alpha1.MeteringSpec, o observation) (*units, error) {
	ns := inst.Status.Namespace
	if ns == "" {
		return nil, nil
	}
	released := !o.releasedAt.IsZero()
	if !released {
		if err := r.applyReporterRBAC(ctx, inst, m); err != nil {
			return nil, err
		}
	}
	cm := &corev1.ConfigMap{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: saasv1alpha1.UsageConfigMap}, cm)
	switch {
	case apierrors.IsNotFound(err) && released:
		return nil, nil
	case apierrors.IsNotFound(err):
		return r.createChannel(ctx, inst)
	case err != nil:
		return nil, fmt.Errorf("getting the usage ConfigMap: %w", err)
	case !render.OwnedBy(cm, inst):
		ctrl.LoggerFrom(ctx).Info("usage ConfigMap belongs to something else; its value is not read", "namespace", ns)
		return nil, nil
	}
	if !released && !controllerutil.ContainsFinalizer(cm, saasv1alpha1.FinalizerUsage) && cm.DeletionTimestamp.IsZero() {
		if err := patchFinalizers(ctx, r.Client, cm, append(cm.Finalizers, saasv1alpha1.FinalizerUsage)); err != nil {
			return nil, fmt.Errorf("adding the usage ConfigMap's finalizer: %w", err)
		}
	}
	v, err := parseUnits(cm.Data[saasv1alpha1.UsageValueKey])
	if err != nil {
		ctrl.LoggerFrom(ctx).Info("usage report is not a non-negative decimal; ignored until it is", "namespace", ns)
		return nil, nil
	}
	v = min(v, maxUnits)
	return &v, nil
}

func (r *Reconciler) createChannel(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) (*units, error) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: saasv1alpha1.UsageConfigMap, Namespace: inst.Status.Namespace,
			Labels: render.Labels(inst), OwnerReferences: []metav1.OwnerReference{render.OwnerReference(inst)},
			Finalizers: []string{saasv1alpha1.FinalizerUsage}},
		Data: map[string]string{saasv1alpha1.UsageValueKey: "0"},
	}
	if err := r.Client.Create(ctx, cm); err != nil {
		return nil, fmt.Errorf("creating the usage ConfigMap: %w", err)
	}
	zero := units(0)
	return &zero, nil
}

// applyReporterRBAC applies the Role and RoleBinding of the usage channel.
func (r *Reconciler) applyReporterRBAC(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, m *saasv1alpha1.MeteringSpec) error {
	ns := inst.Status.Namespace
	sa := m.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	own := ownerApply(inst)
	role := rbacv1ac.Role(saasv1alpha1.UsageReporterRole, ns).WithLabels(render.Labels(inst)).WithOwnerReferences(own).
		WithRules(rbacv1ac.PolicyRule().WithAPIGroups("").WithResources("configmaps").
			WithResourceNames(saasv1alpha1.UsageConfigMap).WithVerbs("get", "patch"))
	binding := rbacv1ac.RoleBinding(saasv1alpha1.UsageReporterRole, ns).WithLabels(render.Labels(inst)).WithOwnerReferences(own).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(saasv1alpha1.UsageReporterRole)).
		WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.ServiceAccountKind).WithName(sa).WithNamespace(ns))
	if err := r.Client.Apply(ctx, role, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying the usage reporter Role: %w", err)
	}
	if err := r.Client.Apply(ctx, binding, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying the usage reporter RoleBinding: %w", err)
	}
	return nil
}

func ownerApply(inst *saasv1alpha1.MarketplaceInstance) *metav1ac.OwnerReferenceApplyConfiguration {
	ref := render.OwnerReference(inst)
	return metav1ac.OwnerReference().WithAPIVersion(ref.APIVersion).WithKind(ref.Kind).WithName(ref.Name).
		WithUID(ref.UID).WithController(true).WithBlockOwnerDeletion(true)
}
