package managercache

import (
	"strings"
	"sync"
	"sync/atomic"

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

// TrimChild drops, before an object enters the cache, what the operator never reads of its
// kind, so the cache of every tenant's children stays small at thousands of instances. It is
// idempotent, as client-go requires of a transform. It only drops fields: what stays is the
// API server's value, so any read of the cache gets a true (if partial) copy. What a step reads
// of a cached child is its name, owner references, generation, creation time and, for some
// kinds, status or a field or two:
//
//   - Deployment, StatefulSet: spec.replicas and status (readiness, freeze); not the Pod
//     template, and of a Deployment's conditions only Available's status.
//   - Job, CronJob: status (the release backup); not the Pod template.
//   - Secret: data (the credentials queryInstance hands to KooGallery).
//   - Namespace: its Pod Security labels (drift repair, see drifted).
//   - ResourceQuota, LimitRange, NetworkPolicy, Service, Ingress: metadata only. A quota's
//     usage is read from the API server by the two rare steps that need it (a plan change's
//     check and a downgrade); a NetworkPolicy edited since our apply shows a generation above
//     the inventory's (drifted).
//
// A cached child has no other labels (ownership is read from its controller reference, see
// render.OwnedBy) and no annotations: what the operator remembers of a child is in the
// instance's inventory (status.resources). A Go map costs over 300 bytes even with one entry,
// and labels and annotations were the largest part of a trimmed child. See compactMeta for the
// rest. Anything else of a child is read from the API server (the instance reconciler's APIReader).
func TrimChild(obj any) (any, error) {
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
	case *networkingv1.NetworkPolicy:
		o.Spec = networkingv1.NetworkPolicySpec{}
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
// every tenant repeats: the names plans give their objects ("web", "tenant-quota") and the
// owner's kind. A namespace's name is the tenant's own and keeps its copy.
func compactMeta(a metav1.Object) {
	a.SetManagedFields(nil)
	a.SetLabels(nil)
	a.SetUID("")
	a.SetAnnotations(nil)
	if a.GetNamespace() != "" {
		a.SetName(shared(a.GetName()))
	}
	refs := a.GetOwnerReferences()
	for i := range refs {
		r := &refs[i]
		r.APIVersion, r.Kind = shared(r.APIVersion), shared(r.Kind)
		r.Controller, r.BlockOwnerDeletion = sharedBool(r.Controller), sharedBool(r.BlockOwnerDeletion)
	}
}

// availableOnly keeps of a Deployment's conditions the status of Available, the one that
// the instance reconciler's readiness check reads; messages and reasons name the ReplicaSet and are a string per tenant.
func availableOnly(conds []appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	for _, c := range conds {
		if c.Type == appsv1.DeploymentAvailable {
			return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionStatus(shared(string(c.Status)))}}
		}
	}
	return nil
}

// vocabulary holds one copy of each string that thousands of cached objects repeat and that
// comes from a small set: kinds, condition types and reasons, plan, product and child names.
// Per-tenant strings (names, namespaces, UIDs, messages) are never put in it: it is never
// emptied, since an entry cannot tell when the last object holding it left the cache (the
// weak table of unique.Make forgets an entry at the first collection after its last Handle is
// dropped, and the next object then gets a copy of its own). Past maxVocabulary entries, which
// only many plans with many objects reach, a string keeps its own copy.
var vocabulary struct {
	sync.Map
	n atomic.Int32
}

const maxVocabulary = 4096

// shared returns the one copy of s that every cached object holding s shares.
func shared(s string) string {
	if v, ok := vocabulary.Load(s); ok {
		return v.(string)
	}
	if vocabulary.n.Load() >= maxVocabulary {
		return s
	}
	v, loaded := vocabulary.LoadOrStore(s, s)
	if !loaded {
		vocabulary.n.Add(1)
	}
	return v.(string)
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

// TrimInstance drops an instance's managed fields and shares the strings that every instance
// repeats: condition types, statuses and reasons, the order's product fields, plan and phase,
// the workload's kinds and names, history activities and results, the release finalizer. Each
// instance-specific string (IDs, namespace, messages naming the tenant) keeps its own copy.
func TrimInstance(obj any) (any, error) {
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
	st.Phase, st.Plan = shared(st.Phase), shared(st.Plan)
	if o := st.Order; o != nil {
		o.OrderType, o.ProductID, o.SKUCode = shared(o.OrderType), shared(o.ProductID), shared(o.SKUCode)
		o.ChargingMode, o.PeriodType = shared(o.ChargingMode), shared(o.PeriodType)
	}
	for i := range st.Resources {
		r := &st.Resources[i]
		r.APIVersion, r.Kind = shared(r.APIVersion), shared(r.Kind)
		if r.Kind != "Namespace" {
			r.Name = shared(r.Name)
		}
	}
	if ref := st.CredentialsSecretRef; ref != nil {
		ref.Name = shared(ref.Name)
	}
	for i := range st.History {
		h := &st.History[i]
		h.Activity, h.Result = shared(h.Activity), shared(h.Result)
	}
	return inst, nil
}
