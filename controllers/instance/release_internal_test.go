package instance

import (
	"context"
	"errors"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// TestReleaseResults: a release step that fails returns its error and no result (controller-runtime
// ignores a result returned with an error, so a wait asked for with one would be lost silently),
// and a step that waits returns when to come back, without an error.
func TestReleaseResults(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	plan, err := testenv.SamplePlan(testenv.ProPlanFile)
	if err != nil {
		t.Fatal(err)
	}
	errAPI := errors.New("the API server is unavailable")
	instance := func(retention time.Duration) *saasv1alpha1.MarketplaceInstance {
		return &saasv1alpha1.MarketplaceInstance{
			ObjectMeta: metav1.ObjectMeta{Name: "cs1-000001", UID: "u1", Generation: 2,
				Finalizers: []string{saasv1alpha1.FinalizerRelease}, DeletionTimestamp: &metav1.Time{Time: now.Add(-time.Minute)}},
			Spec: saasv1alpha1.MarketplaceInstanceSpec{InstanceID: "i1",
				Release: saasv1alpha1.ReleasePolicy{RetentionPeriod: &metav1.Duration{Duration: retention}}},
			Status: saasv1alpha1.MarketplaceInstanceStatus{Plan: plan.Name, Namespace: render.NamespaceName("cs1-000001")},
		}
	}
	runningJob := func(inst *saasv1alpha1.MarketplaceInstance) client.Object {
		job, err := render.BackupJob(inst, plan)
		if err != nil {
			t.Fatal(err)
		}
		job.CreationTimestamp = metav1.NewTime(now.Add(-time.Minute))
		return job
	}
	failGet := func(failing client.Object) interceptor.Funcs {
		return interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := failing.(*saasv1alpha1.MarketplacePlan); ok {
				if _, ok := obj.(*saasv1alpha1.MarketplacePlan); ok {
					return errAPI
				}
			}
			if _, ok := failing.(*batchv1.Job); ok {
				if _, ok := obj.(*batchv1.Job); ok {
					return errAPI
				}
			}
			return c.Get(ctx, key, obj, opts...)
		}}
	}
	for _, tc := range []struct {
		name      string
		retention time.Duration
		// withPlan puts the plan in the API server; withJob, a running backup Job.
		withPlan, withJob bool
		funcs             interceptor.Funcs
		wantErr           bool
		wantRequeue       time.Duration
	}{
		// The retention step asks to come back at the end of the period, then fails.
		{name: "retention: reading the plan fails", retention: time.Hour, withPlan: true,
			funcs: failGet(&saasv1alpha1.MarketplacePlan{}), wantErr: true},
		{name: "retention: waiting, plan gone", retention: time.Hour, wantRequeue: 59 * time.Minute},
		{name: "backup: reading the Job fails", withPlan: true, funcs: failGet(&batchv1.Job{}), wantErr: true},
		// The sample plan's backup timeout is 30m; the Job started a minute ago.
		{name: "backup: waiting for the Job", withPlan: true, withJob: true, wantRequeue: 29 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := instance(tc.retention)
			objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: inst.Status.Namespace,
				OwnerReferences: []metav1.OwnerReference{render.OwnerReference(inst)}}}}
			if tc.withPlan {
				objs = append(objs, plan.DeepCopy())
			}
			if tc.withJob {
				objs = append(objs, runningJob(inst))
			}
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).WithInterceptorFuncs(tc.funcs).Build()
			r := &Reconciler{Client: c, APIReader: c, Scheme: c.Scheme()}
			res, err := r.reconcileDelete(context.Background(), newScope(inst, now))
			if tc.wantErr {
				if !errors.Is(err, errAPI) {
					t.Errorf("error = %v, want %v", err, errAPI)
				}
				if res != (ctrl.Result{}) {
					t.Errorf("result = %+v with an error, want none", res)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v, want none", err)
			}
			if res != (ctrl.Result{RequeueAfter: tc.wantRequeue}) {
				t.Errorf("result = %+v, want RequeueAfter %s", res, tc.wantRequeue)
			}
		})
	}
}
