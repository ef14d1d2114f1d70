package instance

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
)

func TestChildChanged(t *testing.T) {
	deployment := func(rv string, gen, observed, ready int64, available corev1.ConditionStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t", ResourceVersion: rv, Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: 1, UpdatedReplicas: int32(ready), ReadyReplicas: int32(ready),
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: available}}},
		}
	}
	quota := func(rv string) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "t", ResourceVersion: rv, Generation: 1}}
	}
	secret := func(rv, password string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "t", ResourceVersion: rv},
			Data: map[string][]byte{"password": []byte(password)}}
	}
	progressing := deployment("2", 1, 1, 0, corev1.ConditionFalse)
	progressing.Status.Replicas = 2
	for _, tc := range []struct {
		name     string
		old, cur client.Object
		want     bool
	}{
		{"a workload's progress short of ready", deployment("1", 1, 1, 0, corev1.ConditionFalse), progressing, false},
		{"a workload becoming ready", deployment("1", 1, 1, 0, corev1.ConditionFalse), deployment("2", 1, 1, 1, corev1.ConditionTrue), true},
		{"a workload no longer ready", deployment("1", 1, 1, 1, corev1.ConditionTrue), deployment("2", 1, 1, 0, corev1.ConditionFalse), true},
		{"a workload's spec edited", deployment("1", 1, 1, 1, corev1.ConditionTrue), deployment("2", 2, 1, 1, corev1.ConditionTrue), true},
		{"a quota's usage (trimmed from the cache)", quota("1"), quota("2"), false},
		{"a Secret's data edited", secret("1", "a"), secret("2", "b"), true},
		{"a relist of an unchanged object", secret("1", "a"), secret("1", "a"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := childChanged(&quotaWaiters{}).Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.cur}); got != tc.want {
				t.Errorf("update: got %v, want %v", got, tc.want)
			}
		})
	}
	// A refused downgrade waits for its quota's usage, which the cache does not keep.
	var waiters quotaWaiters
	owned := func(rv string) *corev1.ResourceQuota {
		q := quota(rv)
		q.OwnerReferences = []metav1.OwnerReference{{Kind: "MarketplaceInstance", Name: "tenant", Controller: ptr.To(true)}}
		return q
	}
	waiters.wait("tenant")
	if !childChanged(&waiters).Update(event.UpdateEvent{ObjectOld: owned("1"), ObjectNew: owned("2")}) {
		t.Error("a quota update did not wake the instance waiting for it")
	}
	waiters.done("tenant")
	if childChanged(&waiters).Update(event.UpdateEvent{ObjectOld: owned("1"), ObjectNew: owned("2")}) {
		t.Error("a quota update woke an instance that no longer waits")
	}

	p := childChanged(&quotaWaiters{})
	if p.Create(event.CreateEvent{Object: quota("1")}) {
		t.Error("a child's creation started a pass")
	}
	if !p.Delete(event.DeleteEvent{Object: quota("1")}) {
		t.Error("a child's deletion did not start a pass")
	}
}

// A workload's readiness change queues its instance ahead of instances waiting for a first pass.
func TestReadinessFirst(t *testing.T) {
	s := scheme.New()
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(saasv1alpha1.GroupVersion.WithKind("MarketplaceInstance"), meta.RESTScopeRoot)
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: "new-order"}})

	web := func(rv string, ready int64, available corev1.ConditionStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "t", ResourceVersion: rv, Generation: 1,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: saasv1alpha1.GroupVersion.String(), Kind: "MarketplaceInstance",
					Name: "provisioned", Controller: ptr.To(true)}}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, UpdatedReplicas: int32(ready), ReadyReplicas: int32(ready),
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: available}}},
		}
	}
	readinessFirst(s, mapper).Update(context.Background(),
		event.UpdateEvent{ObjectOld: web("1", 0, corev1.ConditionFalse), ObjectNew: web("2", 1, corev1.ConditionTrue)}, q)

	item, _, _ := q.GetWithPriority()
	if item.Name != "provisioned" {
		t.Errorf("first out: %s, want the instance whose workload became ready", item.Name)
	}
}
