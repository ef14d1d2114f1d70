package instance

import (
	"encoding/json"
	"testing"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// The cache keeps what the steps read of each kind and drops the rest.
func TestTrimForCache(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "web", Namespace: "t", UID: "u-web",
			Labels:      map[string]string{"saas.marketplace.dev/instance": "i", "pod-security.kubernetes.io/enforce": "restricted"},
			Annotations: map[string]string{"saas.marketplace.dev/applied-hash": "abc", "deployment.kubernetes.io/revision": "3"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "saas.marketplace.dev/v1alpha1", Kind: "MarketplaceInstance",
				Name: "i", UID: "u-1", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "marketplace-operator"}}}
	}
	d := &appsv1.Deployment{ObjectMeta: meta(),
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 2, ObservedGeneration: 3, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Message: `ReplicaSet "web-5d8f" has successfully progressed.`},
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability."}}}}
	d.Annotations[saasv1alpha1.AnnotationFrozenReplicas] = "2"
	np := &networkingv1.NetworkPolicy{ObjectMeta: meta(), Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}}}
	secret := &corev1.Secret{ObjectMeta: meta(), Data: map[string][]byte{"password": []byte("kept")}}
	quota := &corev1.ResourceQuota{ObjectMeta: meta(),
		Spec:   corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}}}
	for _, o := range []any{d, np, secret, quota} {
		if _, err := trimForCache(o); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.ManagedFields) != 0 || d.Annotations != nil || d.Labels != nil || d.UID != "" {
		t.Errorf("metadata: %+v", d.ObjectMeta)
	}
	// What decides ownership stays.
	inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: "i"}}
	if !render.OwnedBy(d, inst) || render.OwnedBy(d, &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: "j"}}) {
		t.Errorf("ownership: %+v", d.OwnerReferences)
	}
	if d.OwnerReferences[0].Controller != np.OwnerReferences[0].Controller || !*d.OwnerReferences[0].BlockOwnerDeletion {
		t.Error("owner references' bools are not shared")
	}
	wantConds := []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}
	if *d.Spec.Replicas != 2 || d.Status.ReadyReplicas != 2 || len(d.Spec.Template.Spec.Containers) != 0 ||
		!equality.Semantic.DeepEqual(d.Status.Conditions, wantConds) {
		t.Errorf("deployment: %+v", d)
	}
	// A policy's spec stays: drift repair compares it with what the operator renders.
	if len(np.Spec.PolicyTypes) != 1 || len(np.ManagedFields) != 0 {
		t.Errorf("network policy: %+v", np)
	}
	if string(secret.Data["password"]) != "kept" || len(quota.Spec.Hard) != 0 || len(quota.Status.Used) != 0 {
		t.Errorf("secret %+v, quota %+v", secret.Data, quota)
	}
}

// client-go runs the transform twice on the objects of an initial list: the second pass must
// change nothing.
func TestTrimForCacheIsIdempotent(t *testing.T) {
	objs := []any{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t", UID: "u", Labels: map[string]string{"a": "b"},
			Annotations: map[string]string{"saas.marketplace.dev/applied-hash": "abc", saasv1alpha1.AnnotationFrozenReplicas: "2", "other": "x"}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0)},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Message: "m"}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "t", Annotations: map[string]string{"saas.marketplace.dev/applied-hash": "def"}},
			Data: map[string][]byte{"password": []byte("p")}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "t", Annotations: map[string]string{"other": "x"}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t"}},
	}
	for _, o := range objs {
		if _, err := trimForCache(o); err != nil {
			t.Fatal(err)
		}
		once := o.(runtime.Object).DeepCopyObject()
		if _, err := trimForCache(o); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(o, once) {
			t.Errorf("a second pass changed %T:\n%+v\nafter one:\n%+v", o, o, once)
		}
	}
}

// A cached child holds true values or none: its trimmed metadata stores nothing in another
// field's place, so a Get of it, or a watch event, never shows a disguised object.
func TestTrimForCacheIsFaithful(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t", Generation: 3, ResourceVersion: "7",
		Annotations: map[string]string{"saas.marketplace.dev/applied-hash": "abc", saasv1alpha1.AnnotationFrozenReplicas: "3"}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}}
	want := d.DeepCopy()
	if _, err := trimForCache(d); err != nil {
		t.Fatal(err)
	}
	want.Annotations = nil
	// Every field left is the server's own value (none holds another's, as selfLink and
	// generateName once held the annotations).
	if !equality.Semantic.DeepEqual(d, want) {
		t.Errorf("trimmed:\n%+v\nwant a subset of the server's object:\n%+v", d, want)
	}
}

// An instance is cached whole but for its managed fields: its status inventory is what the
// reconciler remembers about its children.
func TestTrimInstance(t *testing.T) {
	now := metav1.Now()
	a := readyInstance(1, now)
	a.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "marketplace-operator"}}
	want := a.DeepCopy()
	want.ManagedFields = nil
	if _, err := trimInstance(a); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Errorf("values changed:\n%+v\nwant\n%+v", a, want)
	}
}

// The strings every instance repeats are held as the constants themselves: decoded objects (each
// string its own copy) end up pointing at one static copy, however long apart they were cached.
func TestTrimSharesConstants(t *testing.T) {
	decoded := func(o any, into any) {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	same := func(name, got, want string) {
		t.Helper()
		if got != want || unsafe.StringData(got) != unsafe.StringData(want) {
			t.Errorf("%s %q is not the constant %q", name, got, want)
		}
	}
	inst := &saasv1alpha1.MarketplaceInstance{}
	decoded(readyInstance(1, metav1.Now()), inst)
	if _, err := trimInstance(inst); err != nil {
		t.Fatal(err)
	}
	same("condition type", inst.Status.Conditions[0].Type, saasv1alpha1.ConditionOrderResolved)
	same("condition reason", inst.Status.Conditions[2].Reason, saasv1alpha1.ReasonAvailable)
	same("inventory kind", inst.Status.Resources[0].Kind, "Deployment")
	same("inventory name", inst.Status.BaseResources[5].Name, render.QuotaName)
	same("finalizer", inst.Finalizers[0], saasv1alpha1.FinalizerRelease)

	ns := &corev1.Namespace{}
	decoded(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "t",
		Labels: map[string]string{render.PodSecurityLabelPrefix + "enforce": "restricted"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: saasv1alpha1.GroupVersion.String(), Kind: render.InstanceKind,
			Name: "i", UID: "u"}}}}, ns)
	if _, err := trimForCache(ns); err != nil {
		t.Fatal(err)
	}
	same("owner kind", ns.OwnerReferences[0].Kind, render.InstanceKind)
	same("Pod Security level", ns.Labels[render.PodSecurityLabelPrefix+"enforce"], "restricted")
}
