package instance

import (
	"context"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// childChanged lets through the events of a child that its instance's pass has to answer: its
// deletion (re-create it), a change to what the cache keeps of it (a spec edit moves the
// generation, a Pod Security label, the owner references, a Secret's data, a Job's status)
// and, for Deployments and StatefulSets, a change of readiness. A child's creation never
// starts a pass: the pass that applied it knew, and at start every instance has a pass of its
// own. Nor does a workload's progress short of ready, or a quota's usage unless its instance
// waits for it to shrink (a refused downgrade, see quotaWaiters). Each such pass would compute
// nothing new, and read the API server for every child the cache has not seen yet.
func childChanged(waiters *quotaWaiters) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool { return childUpdateMatters(e.ObjectOld, e.ObjectNew, waiters) },
	}
}

func childUpdateMatters(old, cur client.Object, waiters *quotaWaiters) bool {
	if old == nil || cur == nil {
		return true
	}
	switch cur.(type) {
	case *appsv1.Deployment, *appsv1.StatefulSet:
		return readyOf(old) != readyOf(cur) || !sameApartFromStatus(old, cur)
	case *corev1.ResourceQuota:
		if owner := metav1.GetControllerOf(cur); owner != nil && waiters.waiting(owner.Name) {
			return true
		}
	}
	return !sameApartFromStatus(old, cur)
}

// readinessFirst enqueues an instance whose Deployment or StatefulSet changed readiness ahead
// of new instances: the pass that follows only marks the tenant Ready (a status write and an
// event), while a new instance's first pass applies its whole tenant. In arrival order, each
// buyer of a burst of orders would wait for the first pass of every later order before its
// tenant showed Ready.
func readinessFirst(scheme *runtime.Scheme, mapper meta.RESTMapper) handler.EventHandler {
	owner := handler.EnqueueRequestForOwner(scheme, mapper, &saasv1alpha1.MarketplaceInstance{}, handler.OnlyControllerOwner())
	return handler.Funcs{
		CreateFunc: owner.Create,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
				q = urgent{pq}
			}
			owner.Update(ctx, e, q)
		},
		DeleteFunc:  owner.Delete,
		GenericFunc: owner.Generic,
	}
}

// urgent adds with a priority above the default unless the caller set one (a resync's low one).
type urgent struct {
	priorityqueue.PriorityQueue[reconcile.Request]
}

func (q urgent) Add(item reconcile.Request) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

func (q urgent) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if o.Priority == nil {
		o.Priority = ptr.To(1)
	}
	q.PriorityQueue.AddWithOpts(o, items...)
}

// quotaWaiters are the instances whose downgrade waits for their usage to fit the new plan:
// the cache keeps no quota's usage, so any update of their quota starts a pass that reads it.
// Every instance has a pass at start, which fills the set again after a restart.
type quotaWaiters struct{ names sync.Map }

func (q *quotaWaiters) wait(name string) { q.names.Store(name, struct{}{}) }
func (q *quotaWaiters) done(name string) { q.names.Delete(name) }
func (q *quotaWaiters) waiting(name string) bool {
	_, ok := q.names.Load(name)
	return ok
}

// sameApartFromStatus compares two cached copies of an object, minus their resourceVersion and
// the status of the kinds whose status only readyOf reads.
func sameApartFromStatus(old, cur client.Object) bool {
	a, b := old.DeepCopyObject().(client.Object), cur.DeepCopyObject().(client.Object)
	a.SetResourceVersion("")
	b.SetResourceVersion("")
	switch x := a.(type) {
	case *appsv1.Deployment:
		x.Status = appsv1.DeploymentStatus{}
		b.(*appsv1.Deployment).Status = appsv1.DeploymentStatus{}
	case *appsv1.StatefulSet:
		x.Status = appsv1.StatefulSetStatus{}
		b.(*appsv1.StatefulSet).Status = appsv1.StatefulSetStatus{}
	}
	return equality.Semantic.DeepEqual(a, b)
}

// readyOf is workloadReady of a cached Deployment or StatefulSet.
func readyOf(obj client.Object) bool {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return false
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetKind("StatefulSet")
	if _, ok := obj.(*appsv1.Deployment); ok {
		u.SetKind("Deployment")
	}
	return workloadReady(u)
}
