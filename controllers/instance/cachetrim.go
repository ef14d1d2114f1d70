package instance

import (
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// trimForCache drops, before an object enters the cache, what the operator never reads of its
// kind, so the cache of every tenant's children stays small at thousands of instances. What a
// step reads of a cached child is its name, owner references, generation, creation time, two
// annotations of the operator's own (applied hash, frozen replicas) and, for some kinds, status
// or a field or two:
//
//   - Deployment, StatefulSet: spec.replicas and status (readiness, freeze); not the Pod template.
//   - Job, CronJob: status (the release backup); not the Pod template.
//   - ResourceQuota: status.used (changeInstanceCheck and a downgrade compare it with a plan's quota).
//   - Secret: data (the credentials queryInstance hands to KooGallery).
//   - Namespace, LimitRange, Service, Ingress, NetworkPolicy: metadata only.
//
// A cached child has no labels (ownership is read from its controller reference, see ownedBy):
// a Go map costs over 300 bytes even with one entry, and labels and annotations were the
// largest part of a trimmed child. See compactMeta for the rest.
//
// A Get of a cached child therefore returns a partial object: read anything else from the API
// server (Reconciler.APIReader).
func trimForCache(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		compactMeta(a)
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

// cachedAnnotations are the annotations a step reads of a cached child.
var cachedAnnotations = []string{annotationAppliedHash, saasv1alpha1.AnnotationFrozenReplicas}

// compactMeta keeps of a child's metadata what the steps read, and shares the strings that
// many cached objects repeat: the nine children of an instance carry its name, UID and
// namespace, and every tenant has a "web" or a "tenant-quota". Decoding gives each object
// its own copy of every string; the shared copies are dropped by the runtime once no cached
// object holds them (unique.Make).
func compactMeta(a metav1.Object) {
	a.SetManagedFields(nil)
	a.SetLabels(nil)
	var kept map[string]string
	for _, k := range cachedAnnotations {
		if v, ok := a.GetAnnotations()[k]; ok {
			if kept == nil {
				kept = make(map[string]string, len(cachedAnnotations))
			}
			kept[k] = v // k is the constant: the decoded key is not kept
		}
	}
	a.SetAnnotations(kept)
	a.SetName(shared(a.GetName()))
	a.SetNamespace(shared(a.GetNamespace()))
	refs := a.GetOwnerReferences()
	for i := range refs {
		r := &refs[i]
		r.APIVersion, r.Kind, r.Name = shared(r.APIVersion), shared(r.Kind), shared(r.Name)
		r.UID = types.UID(shared(string(r.UID)))
	}
}

// shared returns the one copy of s that every cached object holding s shares.
func shared(s string) string {
	return unique.Make(s).Value()
}

// trimInstance drops an instance's managed fields and shares the strings that every instance
// repeats: condition types, statuses and reasons, the order's product fields, plan and phase,
// the workload's kinds and names, history activities and results, the release finalizer. Each
// instance-specific string (IDs, messages naming the tenant) keeps its own copy: sharing costs a
// table entry, more than a copy of a string nothing else holds. Its namespace is shared with
// its children's.
func trimInstance(obj any) (any, error) {
	inst, ok := obj.(*saasv1alpha1.MarketplaceInstance)
	if !ok {
		return cache.TransformStripManagedFields()(obj)
	}
	inst.ManagedFields = nil
	for i := range inst.Finalizers {
		inst.Finalizers[i] = shared(inst.Finalizers[i])
	}
	inst.Spec.Plan, inst.Spec.State = shared(inst.Spec.Plan), saasv1alpha1.InstanceState(shared(string(inst.Spec.State)))
	st := &inst.Status
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Status, c.Reason = shared(c.Type), metav1.ConditionStatus(shared(string(c.Status))), shared(c.Reason)
	}
	st.Phase, st.Plan, st.Namespace = shared(st.Phase), shared(st.Plan), shared(st.Namespace)
	if o := st.Order; o != nil {
		o.OrderType, o.ProductID, o.SKUCode = shared(o.OrderType), shared(o.ProductID), shared(o.SKUCode)
		o.ChargingMode, o.PeriodType = shared(o.ChargingMode), shared(o.PeriodType)
	}
	for i := range st.Resources {
		r := &st.Resources[i]
		r.APIVersion, r.Kind, r.Name = shared(r.APIVersion), shared(r.Kind), shared(r.Name)
	}
	if ref := st.CredentialsSecretRef; ref != nil {
		ref.Name, ref.Namespace = shared(ref.Name), shared(ref.Namespace)
	}
	for i := range st.History {
		h := &st.History[i]
		h.Activity, h.Result = shared(h.Activity), shared(h.Result)
	}
	return inst, nil
}
