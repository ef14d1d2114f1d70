package instance

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// trimForCache drops, before an object enters the cache, managed fields and what the operator
// never reads of its kind, so the cache of every tenant's children stays small at thousands of
// instances. What a step reads of a cached child is its metadata (the applied-hash and other
// annotations of the operator's own, the instance label, owner references) and, for some kinds,
// status or a field or two:
//
//   - Deployment, StatefulSet: spec.replicas and status (readiness, freeze); not the Pod template.
//   - Job, CronJob: status (the release backup); not the Pod template.
//   - ResourceQuota: status.used (changeInstanceCheck and a downgrade compare it with a plan's quota).
//   - Secret: data (the credentials queryInstance hands to KooGallery).
//   - Namespace, LimitRange, Service, Ingress, NetworkPolicy: metadata only.
//
// Labels and annotations keep only the operator's own keys: the Pod Security labels of a tenant
// Namespace or a Deployment's revision annotation are most of a child's metadata, and nothing
// here reads them (an applied object's drift shows in its applied hash, not its labels).
//
// A Get of a cached child therefore returns a partial object: read anything else from the API
// server (Reconciler.APIReader).
func trimForCache(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
		a.SetLabels(ownKeys(a.GetLabels()))
		a.SetAnnotations(ownKeys(a.GetAnnotations()))
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
	case *corev1.ResourceQuota:
		o.Spec, o.Status = corev1.ResourceQuotaSpec{}, corev1.ResourceQuotaStatus{Used: o.Status.Used}
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

// ownKeys returns the entries of m under the operator's key prefix: m itself when it holds
// nothing else (the annotations of most children), nil when it holds none of them.
func ownKeys(m map[string]string) map[string]string {
	prefix := saasv1alpha1.GroupVersion.Group + "/"
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	switch n {
	case len(m):
		return m
	case 0:
		return nil
	}
	own := make(map[string]string, n)
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			own[k] = v
		}
	}
	return own
}
