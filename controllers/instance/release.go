package instance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// reconcileTerminal marks an error the user must fix in the spec or plan: no retry until
// something changes.
func reconcileTerminal(err error) error { return reconcile.TerminalError(err) }

// ensureFinalizer adds the release finalizer by merge patch with optimistic lock.
func (r *Reconciler) ensureFinalizer(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) error {
	if controllerutil.ContainsFinalizer(inst, saasv1alpha1.FinalizerRelease) {
		return nil
	}
	want := append(slices.Clone(inst.Finalizers), saasv1alpha1.FinalizerRelease)
	if err := r.patchFinalizers(ctx, inst, want); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// patchFinalizers replaces the finalizers if they are still what inst holds. The lock is on the
// finalizers only, not the resourceVersion: the endpoint writes an instance's annotations and
// spec as calls arrive, and a whole-object lock would fail on each of them and send the pass to
// the rate-limited retry queue.
func (r *Reconciler) patchFinalizers(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, want []string) error {
	var current any // absent: a JSON Patch test against null passes only while none is set
	if len(inst.Finalizers) > 0 {
		current = inst.Finalizers
	}
	ops, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/finalizers", "value": current},
		{"op": "add", "path": "/metadata/finalizers", "value": want},
	})
	if err != nil {
		return err
	}
	return r.Client.Patch(ctx, inst, client.RawPatch(types.JSONPatchType, ops))
}

// reconcileDelete releases the tenant: keep it frozen for the retention period, run the plan's
// backup Job, delete the namespace and wait until it is gone, then let the instance go.
// Released is set first and never goes back, so no late callback can undo a release.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.inst, saasv1alpha1.FinalizerRelease) {
		return ctrl.Result{}, nil
	}
	ns := render.NamespaceName(s.inst.Name)
	nsObj := &corev1.Namespace{}
	// The label-scoped cache holds every namespace of ours; one it does not hold is not ours to
	// delete either way.
	err := r.Client.Get(ctx, client.ObjectKey{Name: ns}, nsObj)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && !render.OwnedBy(nsObj, s.inst)):
		s.set(saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonDeleting, "the tenant is deleted")
		return ctrl.Result{}, r.removeFinalizer(ctx, s.inst)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("getting namespace %s: %w", ns, err)
	case !nsObj.DeletionTimestamp.IsZero():
		s.set(saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonDeleting,
			fmt.Sprintf("waiting for namespace %s and everything in it to be deleted", ns))
		return ctrl.Result{}, nil // the namespace watch brings us back when it is gone
	}

	wait, err := r.retain(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if wait {
		return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
	}
	done, err := r.backup(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !done {
		return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
	}
	if err := r.Client.Delete(ctx, nsObj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, r.degraded(s, saasv1alpha1.ReasonDeleting, fmt.Errorf("deleting namespace %s: %w", ns, err))
	}
	s.set(saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonDeleting,
		fmt.Sprintf("waiting for namespace %s and everything in it to be deleted", ns))
	return ctrl.Result{}, nil
}

// retain keeps a released tenant frozen until its retention period ends; it reports whether
// to keep waiting.
func (r *Reconciler) retain(ctx context.Context, s *scope) (bool, error) {
	var retention time.Duration
	if p := s.inst.Spec.Release.RetentionPeriod; p != nil {
		retention = p.Duration
	}
	until := s.inst.DeletionTimestamp.Add(retention)
	if !s.now.Before(until) {
		return false, nil
	}
	s.set(saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonRetaining,
		fmt.Sprintf("released; the tenant is kept frozen until %s (spec.release.retentionPeriod)", until.UTC().Format(time.RFC3339)))
	s.requeueIn(until.Sub(s.now))
	s.frozen = true
	plan, err := r.appliedPlan(ctx, s)
	if err != nil || plan == nil {
		return true, err
	}
	if err := r.ensureNetworkPolicies(ctx, s, plan); err != nil {
		return true, err
	}
	return true, r.ensureWorkload(ctx, s, plan)
}

// backup runs the plan's backup Job and reports whether release may go on.
func (r *Reconciler) backup(ctx context.Context, s *scope) (bool, error) {
	if s.inst.Spec.Release.SkipBackup || s.inst.Status.Plan == "" {
		return true, nil
	}
	plan, err := r.appliedPlan(ctx, s)
	if err != nil {
		return false, err
	}
	if plan == nil {
		s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionTrue, saasv1alpha1.ReasonBackupFailed,
			fmt.Sprintf("plan %s is gone, so its backup cannot run; restore the plan or set spec.release.skipBackup", s.inst.Status.Plan))
		return false, nil
	}
	job, err := render.BackupJob(s.inst, plan)
	if err != nil || job == nil {
		if err != nil {
			s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionTrue, saasv1alpha1.ReasonBackupFailed, truncate(err.Error(), 1024))
		}
		return job == nil && err == nil, nil
	}
	live := &batchv1.Job{}
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(job), live)
	if apierrors.IsNotFound(err) {
		s.set(saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonBackingUp, "running the plan's backup Job "+job.Name)
		return false, r.apply(ctx, s, job, nil)
	}
	if err != nil {
		return false, fmt.Errorf("getting backup job: %w", err)
	}
	return r.backupDone(s, plan, live), nil
}

func (r *Reconciler) backupDone(s *scope, plan *saasv1alpha1.MarketplacePlan, job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return true
		case batchv1.JobFailed:
			s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionTrue, saasv1alpha1.ReasonBackupFailed,
				fmt.Sprintf("backup Job %s/%s failed (%s); fix it and delete the Job to retry, or set spec.release.skipBackup", job.Namespace, job.Name, c.Reason))
			return false
		}
	}
	timeout := time.Hour
	if plan.Spec.Backup.Timeout != nil {
		timeout = plan.Spec.Backup.Timeout.Duration
	}
	deadline := job.CreationTimestamp.Add(timeout)
	if s.now.After(deadline) {
		s.set(saasv1alpha1.ConditionDegraded, metav1.ConditionTrue, saasv1alpha1.ReasonBackupFailed,
			fmt.Sprintf("backup Job %s/%s did not finish within %s; delete the Job to retry, or set spec.release.skipBackup", job.Namespace, job.Name, timeout))
		return false
	}
	s.requeueIn(deadline.Sub(s.now))
	s.set(saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonBackingUp, "waiting for the backup Job "+job.Name)
	return false
}

func (r *Reconciler) appliedPlan(ctx context.Context, s *scope) (*saasv1alpha1.MarketplacePlan, error) {
	if s.inst.Status.Plan == "" {
		return nil, nil
	}
	plan := &saasv1alpha1.MarketplacePlan{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: s.inst.Status.Plan}, plan); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return plan, nil
}

// removeFinalizer lets the instance go.
func (r *Reconciler) removeFinalizer(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) error {
	want := slices.DeleteFunc(slices.Clone(inst.Finalizers), func(f string) bool { return f == saasv1alpha1.FinalizerRelease })
	if err := r.patchFinalizers(ctx, inst, want); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	return nil
}
