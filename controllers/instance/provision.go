package instance

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func (r *Reconciler) degraded(s *scope, reason string, err error) error {
	s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionTrue, reason, truncate(err.Error(), 1024))
	return err
}

// ensureNamespace creates the tenant namespace, refusing to take over one that is not ours.
func (r *Reconciler) ensureNamespace(ctx context.Context, s *scope, _ *saasv1alpha1.MarketplacePlan) error {
	ns := render.Namespace(s.inst)
	live, err := r.live(ctx, s, corev1.SchemeGroupVersion.WithKind("Namespace"), "", ns.Name)
	if err != nil {
		return err
	}
	if live == nil {
		// The cache only holds labelled namespaces: make sure an unlabelled one is not there.
		other := &corev1.Namespace{}
		err := r.APIReader.Get(ctx, client.ObjectKey{Name: ns.Name}, other)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("getting namespace %s: %w", ns.Name, err)
		}
		if err == nil && !render.OwnedBy(other, s.inst) {
			return namespaceNotOurs(s, ns.Name)
		}
	} else if !render.OwnedBy(live, s.inst) {
		// Another instance's (a hashed long name can equal a crafted short one) or labelled by hand.
		return namespaceNotOurs(s, ns.Name)
	}
	if err := r.apply(ctx, s, ns, live); err != nil {
		return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
	}
	s.inst.Status.Namespace = ns.Name
	return nil
}

func namespaceNotOurs(s *scope, name string) error {
	s.set(saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonConflict,
		fmt.Sprintf("namespace %s exists and is not managed by this instance; delete or rename it", name))
	return reconcileTerminal(fmt.Errorf("namespace %s %w", name, errNotOurs))
}

// ensureQuota applies the plan's ResourceQuota and LimitRange, or prunes them when the plan
// has none.
func (r *Reconciler) ensureQuota(ctx context.Context, s *scope, plan *saasv1alpha1.MarketplacePlan) error {
	ns := s.inst.Status.Namespace
	for _, o := range []struct {
		obj  client.Object
		kind string
		name string
	}{
		{render.ResourceQuota(s.inst, plan), "ResourceQuota", render.QuotaName},
		{render.LimitRange(s.inst, plan), "LimitRange", render.LimitRangeName},
	} {
		gvk := corev1.SchemeGroupVersion.WithKind(o.kind)
		if isNil(o.obj) {
			if err := r.deleteIfOurs(ctx, s, gvk, ns, o.name); err != nil {
				return err
			}
			continue
		}
		live, err := r.live(ctx, s, gvk, ns, o.name)
		if err != nil {
			return err
		}
		if err := r.apply(ctx, s, o.obj, live); err != nil {
			return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
		}
	}
	return nil
}

// ensureNetworkPolicies isolates the tenant from other tenants and the cluster, and blocks all
// its ingress while frozen (the allow policy is pruned; the deny and egress policies stay).
func (r *Reconciler) ensureNetworkPolicies(ctx context.Context, s *scope, plan *saasv1alpha1.MarketplacePlan) error {
	ns := s.inst.Status.Namespace
	gvk := networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy")
	opts := render.NetworkOptions{Frozen: s.frozen, IngressNamespaces: r.Options.IngressNamespaces, EgressExcept: r.Options.EgressExcept}
	if plan.Spec.Network != nil {
		opts.Egress = plan.Spec.Network.Egress
	}
	want := map[string]bool{}
	for _, np := range render.NetworkPolicies(s.inst, opts) {
		want[np.Name] = true
		live, err := r.live(ctx, s, gvk, ns, np.Name)
		if err != nil {
			return err
		}
		if err := r.apply(ctx, s, np, live); err != nil {
			return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
		}
	}
	for _, name := range []string{render.DenyIngressPolicyName, render.AllowIngressPolicyName, render.EgressPolicyName} {
		if !want[name] {
			if err := r.deleteIfOurs(ctx, s, gvk, ns, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureCredentials creates the buyer's admin credentials once. The Secret is never updated,
// so a password can only change when someone deletes the Secret on purpose.
func (r *Reconciler) ensureCredentials(ctx context.Context, s *scope, plan *saasv1alpha1.MarketplacePlan) error {
	ns := s.inst.Status.Namespace
	ref := &saasv1alpha1.SecretReference{Name: render.CredentialsSecretName, Namespace: ns}
	existing := &corev1.Secret{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, existing)
	if err == nil {
		s.inst.Status.CredentialsSecretRef = ref
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting credentials secret: %w", err)
	}
	password, err := render.GeneratePassword(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating password: %w", err)
	}
	secret := render.CredentialsSecret(s.inst, render.AdminUserName(plan), password)
	u, err := r.toUnstructured(s.inst, secret)
	if err != nil {
		return err
	}
	if err := r.Client.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
		return r.degraded(s, saasv1alpha1.ReasonApplyFailed, fmt.Errorf("creating credentials secret: %w", err))
	}
	// AlreadyExists: a racing pass created it first; its password stands.
	s.inst.Status.CredentialsSecretRef = ref
	return nil
}

// deleteIfOurs deletes a child that should no longer exist, and forgets it; NotFound means done.
func (r *Reconciler) deleteIfOurs(ctx context.Context, s *scope, gvk schema.GroupVersionKind, ns, name string) error {
	live, err := r.live(ctx, s, gvk, ns, name)
	if err != nil {
		return err
	}
	if live != nil && render.OwnedBy(live, s.inst) {
		if err := r.Client.Delete(ctx, live); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s %s: %w", gvk.Kind, name, err)
		}
	}
	s.forget(refFor(gvk, name))
	return nil
}

// isNil reports a typed nil behind the client.Object interface (render returns nil pointers
// for objects a plan does not have).
func isNil(o client.Object) bool {
	switch v := o.(type) {
	case *corev1.ResourceQuota:
		return v == nil
	case *corev1.LimitRange:
		return v == nil
	default:
		return o == nil
	}
}

// ensureEntitlement keeps the tenant's entitlement ConfigMap (render.EntitlementConfigMap) in
// step with its order, expiry and freeze. ConfigMaps are not cached (and have no generation to
// tell an edit by): it is written when what it should say changed since the inventory's last
// apply, so an edited or deleted copy is put right at the next change, not on every pass.
func (r *Reconciler) ensureEntitlement(ctx context.Context, s *scope, plan string) error {
	cm, err := render.EntitlementConfigMap(s.inst, plan, s.frozen)
	if err != nil {
		return err
	}
	u, err := r.toUnstructured(s.inst, cm)
	if err != nil {
		return err
	}
	hash, err := render.AppliedHash(u)
	if err != nil {
		return err
	}
	if e := s.entry(refOf(u)); e != nil && e.AppliedHash == hash {
		return nil
	}
	if err := r.apply(ctx, s, u, nil); err != nil {
		return r.degraded(s, saasv1alpha1.ReasonApplyFailed, err)
	}
	return nil
}
