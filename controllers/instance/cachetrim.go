package instance

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
)

// trimForCache drops, before an object enters the cache, managed fields and what the operator
// never reads of its kind, so the cache of every tenant's children stays small at thousands of
// instances. What a step reads of a cached child is its metadata (the applied-hash annotation,
// the instance label, owner references) and, for some kinds, status or a field or two:
//
//   - Deployment, StatefulSet: spec.replicas and status (readiness, freeze); not the Pod template.
//   - Job, CronJob: status (the release backup); not the Pod template.
//   - ResourceQuota: spec and status (changeInstanceCheck compares usage with a plan's quota).
//   - Secret: data (the credentials queryInstance hands to KooGallery).
//   - Namespace, LimitRange, Service, Ingress, NetworkPolicy: metadata only.
//
// A Get of a cached child therefore returns a partial object: read anything else from the API
// server (Reconciler.APIReader).
func trimForCache(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec = appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}
	case *appsv1.StatefulSet:
		o.Spec = appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}
	case *batchv1.Job:
		o.Spec = batchv1.JobSpec{}
	case *batchv1.CronJob:
		o.Spec = batchv1.CronJobSpec{}
	case *corev1.Namespace:
		o.Spec, o.Status = corev1.NamespaceSpec{}, corev1.NamespaceStatus{Phase: o.Status.Phase}
	case *corev1.LimitRange:
		o.Spec = corev1.LimitRangeSpec{}
	case *corev1.Service:
		o.Spec, o.Status = corev1.ServiceSpec{}, corev1.ServiceStatus{}
	case *networkingv1.Ingress:
		o.Spec, o.Status = networkingv1.IngressSpec{}, networkingv1.IngressStatus{}
	case *networkingv1.NetworkPolicy:
		o.Spec = networkingv1.NetworkPolicySpec{}
	}
	return obj, nil
}
