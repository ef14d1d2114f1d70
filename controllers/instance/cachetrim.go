package instance

import (
	"strings"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// trimForCache drops, before an object enters the cache, what the operator never reads of its
// kind, so the cache of every tenant's children stays small at thousands of instances. It is
// idempotent, as client-go requires of a transform. What a step reads of a cached child is its
// name, owner references, generation, creation time (not its UID), two annotations of the
// operator's own (applied hash, frozen replicas) and, for some kinds, status or a field or two:
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
// A cached child has no other labels (ownership is read from its controller reference, see render.OwnedBy)
// and no annotations map: the two annotations it keeps are in two strings (stashAnnotations).
// A Go map costs over 300 bytes even with one entry, and labels and annotations were the
// largest part of a trimmed child. See compactMeta for the rest.
//
// A Get of a cached child therefore returns a partial object: read children through
// Reconciler.live, which puts the annotations back, and anything else from the API server
// (Reconciler.APIReader).
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
			out[shared(k)] = shared(v)
		}
	}
	return out
}

// compactMeta keeps of a child's metadata what the steps read, and shares the strings that
// many cached objects repeat: the nine children of an instance carry its name, UID and
// namespace, and every tenant has a "web" or a "tenant-quota". Decoding gives each object
// its own copy of every string; the shared copies are dropped by the runtime once no cached
// object holds them (unique.Make).
func compactMeta(a metav1.Object) {
	a.SetManagedFields(nil)
	a.SetLabels(nil)
	a.SetUID("")
	stashAnnotations(a)
	a.SetName(shared(a.GetName()))
	a.SetNamespace(shared(a.GetNamespace()))
	refs := a.GetOwnerReferences()
	for i := range refs {
		r := &refs[i]
		r.APIVersion, r.Kind, r.Name = shared(r.APIVersion), shared(r.Kind), shared(r.Name)
		r.UID = types.UID(shared(string(r.UID)))
		r.Controller, r.BlockOwnerDeletion = sharedBool(r.Controller), sharedBool(r.BlockOwnerDeletion)
	}
}

// stashAnnotations keeps the two annotations a step reads of a cached child in two metadata
// strings the operator's children never use, and drops the annotations map: selfLink (no API
// server sets it since Kubernetes 1.20) holds the applied hash, generateName (children have
// fixed names) the frozen replicas. restoreAnnotations puts them back on a copy read from the
// cache; nothing else reads a cached child's annotations.
//
// An object without annotations is left as it is: it has been stashed already. client-go runs
// the transform twice on the objects of an initial list (once as the list streams in, once as
// they enter the informer's queue), and a second stash would wipe the first.
func stashAnnotations(a metav1.Object) {
	ann := a.GetAnnotations()
	if ann == nil {
		return
	}
	a.SetSelfLink(ann[annotationAppliedHash])
	a.SetGenerateName(ann[saasv1alpha1.AnnotationFrozenReplicas])
	a.SetAnnotations(nil)
}

// restoreAnnotations undoes stashAnnotations on u, a copy of a cached child.
func restoreAnnotations(u *unstructured.Unstructured) {
	for _, s := range stashed {
		v, _, _ := unstructured.NestedString(u.Object, "metadata", s.field)
		unstructured.RemoveNestedField(u.Object, "metadata", s.field)
		if v != "" {
			_ = unstructured.SetNestedField(u.Object, v, "metadata", "annotations", s.annotation) // metadata is a map: cannot fail
		}
	}
}

// stashed are the metadata fields that hold a cached child's annotations (stashAnnotations).
var stashed = [...]struct{ field, annotation string }{
	{"selfLink", annotationAppliedHash},
	{"generateName", saasv1alpha1.AnnotationFrozenReplicas},
}

// availableOnly keeps of a Deployment's conditions the status of Available, the one that
// workloadReady reads; messages and reasons name the ReplicaSet and are a string per tenant.
func availableOnly(conds []appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	for _, c := range conds {
		if c.Type == appsv1.DeploymentAvailable {
			return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionStatus(shared(string(c.Status)))}}
		}
	}
	return nil
}

// shared returns the one copy of s that every cached object holding s shares.
func shared(s string) string {
	return unique.Make(s).Value()
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
