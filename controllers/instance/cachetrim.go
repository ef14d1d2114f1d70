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
			out[k] = v
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
		r.Controller, r.BlockOwnerDeletion = sharedBool(r.Controller), sharedBool(r.BlockOwnerDeletion)
	}
}

// availableOnly keeps of a Deployment's conditions the status of Available, the one that
// workloadReady reads; messages and reasons name the ReplicaSet and are a string per tenant.
func availableOnly(conds []appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	for _, c := range conds {
		if c.Type == appsv1.DeploymentAvailable {
			return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: c.Status}}
		}
	}
	return nil
}

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

// trimInstance drops an instance's managed fields.
func trimInstance(obj any) (any, error) {
	inst, ok := obj.(*saasv1alpha1.MarketplaceInstance)
	if !ok {
		return cache.TransformStripManagedFields()(obj)
	}
	inst.ManagedFields = nil
	return inst, nil
}
