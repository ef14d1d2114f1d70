package instance

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// trimForCache drops, before an object enters the cache, what the operator never reads of its
// kind, so the cache of every tenant's children stays small at thousands of instances. It only
// drops fields, never stores one in another's place: a cached child is a faithful subset of the
// server's object, and any read of it (a Get, a watch event) sees true values or none. It is
// idempotent, as client-go requires of a transform. What a step reads of a cached child is its
// name, namespace, owner references, generation and creation time, and for some kinds status
// or a field or two:
//
//   - Deployment, StatefulSet: spec.replicas and status (readiness, freeze); not the Pod
//     template, and of a Deployment's conditions only Available's status.
//   - Job, CronJob: status (the release backup); not the Pod template.
//   - Secret: data (the credentials queryInstance hands to KooGallery).
//   - Namespace: its Pod Security labels (drift repair, see drifted).
//   - NetworkPolicy: spec (drift repair).
//   - ResourceQuota, LimitRange, Service, Ingress: metadata only. A quota's usage is read from
//     the API server by the two rare steps that need it (a plan change's check and a downgrade).
//
// A cached child has no annotations, no UID and no labels but a Namespace's Pod Security ones:
// ownership is read from its controller reference (render.OwnedBy), and what the operator
// remembers about a child is in the instance's status inventory (status.resources and
// status.baseResources), not on the child. A Go map costs over 300 bytes even with one entry.
//
// Anything else of a child is read from the API server (Reconciler.APIReader).
func trimForCache(obj any) (any, error) {
	var podSecurity map[string]string
	if ns, ok := obj.(*corev1.Namespace); ok {
		podSecurity = podSecurityLabels(ns.Labels)
	}
	if a, err := meta.Accessor(obj); err == nil {
		compactMeta(a)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec = appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}
		o.Status.Conditions = availableOnly(o.Status.Conditions)
	case *appsv1.StatefulSet:
		o.Spec = appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}
	case *batchv1.Job:
		o.Spec = batchv1.JobSpec{}
	case *batchv1.CronJob:
		o.Spec = batchv1.CronJobSpec{}
	case *corev1.ResourceQuota:
		o.Spec, o.Status = corev1.ResourceQuotaSpec{}, corev1.ResourceQuotaStatus{}
	case *corev1.Namespace:
		o.Spec, o.Status = corev1.NamespaceSpec{}, corev1.NamespaceStatus{Phase: o.Status.Phase}
		o.Labels = podSecurity
	case *corev1.LimitRange:
		o.Spec = corev1.LimitRangeSpec{}
	case *corev1.Service:
		o.Spec, o.Status = corev1.ServiceSpec{}, corev1.ServiceStatus{}
	case *networkingv1.Ingress:
		o.Spec, o.Status = networkingv1.IngressSpec{}, networkingv1.IngressStatus{}
	}
	return obj, nil
}

// podSecurityLabels are the Pod Security labels among labels, or nil.
func podSecurityLabels(labels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		if strings.HasPrefix(k, render.PodSecurityLabelPrefix) {
			if out == nil {
				out = make(map[string]string, 6)
			}
			out[constant(k)] = constant(v)
		}
	}
	return out
}

// compactMeta keeps of a child's metadata what the steps read.
func compactMeta(a metav1.Object) {
	a.SetManagedFields(nil)
	a.SetLabels(nil)
	a.SetAnnotations(nil)
	a.SetUID("")
	refs := a.GetOwnerReferences()
	for i := range refs {
		r := &refs[i]
		r.APIVersion, r.Kind = constant(r.APIVersion), constant(r.Kind)
		r.Controller, r.BlockOwnerDeletion = sharedBool(r.Controller), sharedBool(r.BlockOwnerDeletion)
	}
}

// availableOnly keeps of a Deployment's conditions the status of Available, the one that
// workloadReady reads; messages and reasons name the ReplicaSet and are a string per tenant.
func availableOnly(conds []appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	for _, c := range conds {
		if c.Type == appsv1.DeploymentAvailable {
			return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionStatus(constant(string(c.Status)))}}
		}
	}
	return nil
}

// constant returns s as the operator's or Kubernetes' constant of the same value when the
// vocabulary has one, else s itself. A decoded object holds its own copy of every string; the
// constants are static data, so the cached objects that repeat one hold no copy at all.
// Strings of one tenant (names, UIDs, messages) are not in the vocabulary: nothing would say
// when their one copy may go.
func constant(s string) string {
	if c, ok := vocabulary[s]; ok {
		return c
	}
	return s
}

// vocabulary holds the strings that every instance's cached objects repeat: the owner
// reference's API version and kind, the kinds, API versions and fixed names of the inventory,
// condition types, statuses and reasons, phases, the finalizer and the namespace's Pod Security
// labels.
var vocabulary = func() map[string]string {
	m := map[string]string{}
	for _, c := range []string{
		saasv1alpha1.GroupVersion.String(), render.InstanceKind, saasv1alpha1.FinalizerRelease,
		"v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "policy/v1", "autoscaling/v2", "rbac.authorization.k8s.io/v1",
		"Namespace", "ResourceQuota", "LimitRange", "Secret", "Service", "ConfigMap", "ServiceAccount", "PersistentVolumeClaim",
		"Deployment", "StatefulSet", "Job", "CronJob", "NetworkPolicy", "Ingress", "PodDisruptionBudget",
		"HorizontalPodAutoscaler", "Role", "RoleBinding",
		render.QuotaName, render.LimitRangeName, render.DenyIngressPolicyName, render.AllowIngressPolicyName,
		render.EgressPolicyName, render.CredentialsSecretName,
		string(metav1.ConditionTrue), string(metav1.ConditionFalse), string(metav1.ConditionUnknown),
		saasv1alpha1.ConditionReady, saasv1alpha1.ConditionOrderResolved, saasv1alpha1.ConditionProvisioned,
		saasv1alpha1.ConditionFrozen, saasv1alpha1.ConditionDegraded, saasv1alpha1.ConditionReleased, saasv1alpha1.ConditionPaused,
		saasv1alpha1.ReasonResolved, saasv1alpha1.ReasonQueryFailed, saasv1alpha1.ReasonOrderNotFound, saasv1alpha1.ReasonUnknownSKU,
		saasv1alpha1.ReasonAmbiguousPlan, saasv1alpha1.ReasonPlanNotFound, saasv1alpha1.ReasonDebugOrder,
		saasv1alpha1.ReasonProvisioning, saasv1alpha1.ReasonUpgrading, saasv1alpha1.ReasonAvailable,
		saasv1alpha1.ReasonRenderFailed, saasv1alpha1.ReasonApplyFailed, saasv1alpha1.ReasonConflict,
		saasv1alpha1.ReasonDowngradeRefused, saasv1alpha1.ReasonFrozenByOrder, saasv1alpha1.ReasonExpired,
		saasv1alpha1.ReasonActive, saasv1alpha1.ReasonRetaining, saasv1alpha1.ReasonBackingUp,
		saasv1alpha1.ReasonBackupFailed, saasv1alpha1.ReasonDeleting, saasv1alpha1.ReasonPaused,
		"Pending", "Ready", "Upgrading", "Frozen", "Releasing", "Failed", "Paused", "Debug",
		"restricted", "latest",
	} {
		m[c] = c
	}
	for _, mode := range []string{"enforce", "audit", "warn"} {
		for _, k := range []string{render.PodSecurityLabelPrefix + mode, render.PodSecurityLabelPrefix + mode + "-version"} {
			m[k] = k // built at start-up: one copy, held by the vocabulary for good
		}
	}
	return m
}()

// sharedBool returns a pointer to one of two shared bools, or nil: every owner reference holds
// two, a heap allocation each once decoded.
func sharedBool(b *bool) *bool {
	switch {
	case b == nil:
		return nil
	case *b:
		return &boolTrue
	default:
		return &boolFalse
	}
}

var boolTrue, boolFalse = true, false

// trimInstance drops an instance's managed fields, and holds the strings that every instance
// repeats as constants (see constant).
func trimInstance(obj any) (any, error) {
	inst, ok := obj.(*saasv1alpha1.MarketplaceInstance)
	if !ok {
		return cache.TransformStripManagedFields()(obj)
	}
	inst.ManagedFields = nil
	for i := range inst.Finalizers {
		inst.Finalizers[i] = constant(inst.Finalizers[i])
	}
	st := &inst.Status
	st.Phase = constant(st.Phase)
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Status, c.Reason = constant(c.Type), metav1.ConditionStatus(constant(string(c.Status))), constant(c.Reason)
	}
	for _, refs := range [][]saasv1alpha1.ResourceRef{st.Resources, st.BaseResources} {
		for i := range refs {
			r := &refs[i]
			r.APIVersion, r.Kind, r.Name = constant(r.APIVersion), constant(r.Kind), constant(r.Name)
		}
	}
	return inst, nil
}
