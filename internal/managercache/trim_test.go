package managercache

import (
	"encoding/json"
	"runtime"
	"testing"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// The cache keeps what the steps read of each kind and drops the rest.
func TestTrimForCache(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "web", Namespace: "t", UID: "u-web",
			Labels:      map[string]string{"saas.marketplace.dev/instance": "i", "pod-security.kubernetes.io/enforce": "restricted"},
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "3"},
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
	np := &networkingv1.NetworkPolicy{ObjectMeta: meta(), Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Ingress"}}}
	secret := &corev1.Secret{ObjectMeta: meta(), Data: map[string][]byte{"password": []byte("kept")}}
	quota := &corev1.ResourceQuota{ObjectMeta: meta(),
		Spec:   corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("1")}}}
	for _, o := range []any{d, np, secret, quota} {
		if _, err := TrimChild(o); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.ManagedFields) != 0 || d.Annotations != nil || d.Labels != nil || d.UID != "" {
		t.Errorf("metadata: %+v", d.ObjectMeta)
	}
	// Fields are dropped, never reused: what stays is the API server's value.
	if d.SelfLink != "" || d.GenerateName != "" || d.Name != "web" || d.Namespace != "t" {
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
	// A policy's spec goes: drift repair compares its generation with the inventory's.
	if len(np.Spec.PolicyTypes) != 0 || len(np.ManagedFields) != 0 {
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
			Annotations: map[string]string{saasv1alpha1.AnnotationFrozenReplicas: "2", "other": "x"}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0)},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Message: "m"}}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "t", Annotations: map[string]string{"other": "def"}},
			Data: map[string][]byte{"password": []byte("p")}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "t", Annotations: map[string]string{"other": "x"}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t"}},
	}
	for _, o := range objs {
		if _, err := TrimChild(o); err != nil {
			t.Fatal(err)
		}
		once := o.(k8sruntime.Object).DeepCopyObject()
		if _, err := TrimChild(o); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(o, once) {
			t.Errorf("a second pass changed %T:\n%+v\nafter one:\n%+v", o, o, once)
		}
	}
}

// Children decoded apart share the strings every tenant repeats once trimmed, and only those.
func TestTrimForCacheSharesVocabulary(t *testing.T) {
	decode := func() *appsv1.Deployment {
		d := &appsv1.Deployment{}
		// Decoding gives every string its own storage, as a watch does.
		if err := json.Unmarshal([]byte(`{"metadata":{"name":"web","namespace":"tenant-a","ownerReferences":[{"apiVersion":"saas.marketplace.dev/v1alpha1",`+
			`"kind":"MarketplaceInstance","name":"a","uid":"u-1","controller":true}]}}`), d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := decode(), decode()
	if unsafe.StringData(a.Name) == unsafe.StringData(b.Name) {
		t.Fatal("decoded strings already share storage: the test proves nothing")
	}
	for _, d := range []*appsv1.Deployment{a, b} {
		if _, err := TrimChild(d); err != nil {
			t.Fatal(err)
		}
	}
	if unsafe.StringData(a.Name) != unsafe.StringData(b.Name) || unsafe.StringData(a.OwnerReferences[0].Kind) != unsafe.StringData(b.OwnerReferences[0].Kind) {
		t.Error("child names and owner kinds are not shared")
	}
	if unsafe.StringData(a.Namespace) == unsafe.StringData(b.Namespace) {
		t.Error("a tenant's namespace went into the vocabulary, which is never emptied")
	}
	// Sharing survives collections: the vocabulary holds its strings.
	runtime.GC()
	c := decode()
	if _, err := TrimChild(c); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(c.Name) != unsafe.StringData(a.Name) {
		t.Error("a child decoded after a collection does not share its name")
	}
}
