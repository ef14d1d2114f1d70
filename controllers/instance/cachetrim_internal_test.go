package instance

import (
	"maps"
	"testing"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
			Annotations: map[string]string{annotationAppliedHash: "abc", "deployment.kubernetes.io/revision": "3"},
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
	// What decides ownership stays, and the strings every child of the instance repeats are
	// one copy.
	inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: "i"}}
	if !render.OwnedBy(d, inst) || render.OwnedBy(d, &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: "j"}}) {
		t.Errorf("ownership: %+v", d.OwnerReferences)
	}
	if unsafe.StringData(d.Namespace) != unsafe.StringData(np.Namespace) ||
		unsafe.StringData(d.OwnerReferences[0].Name) != unsafe.StringData(secret.OwnerReferences[0].Name) {
		t.Error("namespace and owner name are not shared")
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
// change nothing, or a restarted manager loses every applied hash and rewrites every child.
func TestTrimForCacheIsIdempotent(t *testing.T) {
	objs := []any{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t", UID: "u", Labels: map[string]string{"a": "b"},
			Annotations: map[string]string{annotationAppliedHash: "abc", saasv1alpha1.AnnotationFrozenReplicas: "2", "other": "x"}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0)},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Message: "m"}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "t", Annotations: map[string]string{annotationAppliedHash: "def"}},
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

// A child read from the cache has the annotations the steps read back, and nothing else of
// the trimmed metadata.
func TestRestoreAnnotations(t *testing.T) {
	for name, tc := range map[string]struct{ in, want map[string]string }{
		"hash and frozen replicas": {
			in:   map[string]string{annotationAppliedHash: "abc", saasv1alpha1.AnnotationFrozenReplicas: "3", "other": "x"},
			want: map[string]string{annotationAppliedHash: "abc", saasv1alpha1.AnnotationFrozenReplicas: "3"}},
		"hash only": {in: map[string]string{annotationAppliedHash: "abc"}, want: map[string]string{annotationAppliedHash: "abc"}},
		"none":      {in: map[string]string{"other": "x"}, want: nil},
	} {
		t.Run(name, func(t *testing.T) {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t", Annotations: tc.in}}
			if _, err := trimForCache(d); err != nil {
				t.Fatal(err)
			}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: m}
			restoreAnnotations(u)
			if got := u.GetAnnotations(); !maps.Equal(got, tc.want) {
				t.Errorf("annotations %v, want %v", got, tc.want)
			}
			if u.GetSelfLink() != "" || u.GetGenerateName() != "" {
				t.Errorf("stash left in metadata: %v", u.Object["metadata"])
			}
		})
	}
}

// Two instances decoded apart share the strings every instance repeats, and keep their values.
func TestTrimInstance(t *testing.T) {
	now := metav1.Now()
	a, b := readyInstance(1, now), readyInstance(2, now)
	a.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "marketplace-operator"}}
	want := a.DeepCopy()
	want.ManagedFields = nil
	for _, o := range []any{a, b} {
		if _, err := trimInstance(o); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Errorf("values changed:\n%+v\nwant\n%+v", a, want)
	}
	for name, pair := range map[string][2]string{
		"condition reason": {a.Status.Conditions[2].Reason, b.Status.Conditions[2].Reason},
		"SKU":              {a.Status.Order.SKUCode, b.Status.Order.SKUCode},
		"resource kind":    {a.Status.Resources[0].Kind, b.Status.Resources[0].Kind},
		"history result":   {a.Status.History[0].Result, b.Status.History[0].Result},
	} {
		if unsafe.StringData(pair[0]) != unsafe.StringData(pair[1]) {
			t.Errorf("%s is not shared", name)
		}
	}
}
