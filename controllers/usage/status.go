package usage

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// closeUsage writes a ledger computed from the cached instance, with optimistic lock: a pass
// that started from an older ledger (a stale cache) fails here instead of closing a period twice
// or sending a period's records with other values.
// It reports whether it wrote: then inst holds the ledger as written.
func (r *Reconciler) closeUsage(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, u *saasv1alpha1.UsageStatus) (bool, error) {
	if !changed(inst.Status.Usage, u) {
		return false, nil
	}
	return true, r.writeUsage(ctx, inst, u, client.MergeFromWithOptimisticLock{})
}

// writeUsage merge-patches status.usage alone. The sample alone (statisticalTime, value) is not
// worth a write: it is recomputed from the last one. Without a lock, inst must hold the ledger as
// last written (the answer to closeUsage): this controller is the ledger's only writer and
// never works on one instance twice at a time.
func (r *Reconciler) writeUsage(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, u *saasv1alpha1.UsageStatus, opts ...client.MergeFromOption) error {
	if !changed(inst.Status.Usage, u) {
		return nil
	}
	base := inst.DeepCopy()
	inst.Status.Usage = u
	if err := r.Client.Status().Patch(ctx, inst, client.MergeFromWithOptions(base, opts...)); err != nil {
		inst.Status.Usage = base.Status.Usage
		return fmt.Errorf("writing the usage ledger: %w", err)
	}
	return nil
}

func changed(old, u *saasv1alpha1.UsageStatus) bool {
	if old == nil || u == nil {
		return old != u
	}
	return old.Running != u.Running || !old.PushedUntil.Equal(&u.PushedUntil) || old.PushedValue != u.PushedValue ||
		!equality.Semantic.DeepEqual(old.Pending, u.Pending) || old.Failures != u.Failures ||
		!equality.Semantic.DeepEqual(old.NextAttemptTime, u.NextAttemptTime) || old.LastError != u.LastError
}

// push sends the pending periods that have usage, unless a failure's backoff is not over, and
// records the outcome: acknowledged periods move to pushedUntil; a failure is counted, with the
// time of the next attempt, and the periods stay pending to be sent again with the same
// meteringSn. Unless inst is fresh (the answer to this pass's write), the outcome is written with
// optimistic lock: pending periods of a stale copy may have been acknowledged already, and are
// then only sent again (KooGallery de-duplicates them), never recorded over a newer ledger.
func (r *Reconciler) push(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, l ledger, now time.Time, fresh bool) error {
	var lock []client.MergeFromOption
	if !fresh {
		lock = append(lock, client.MergeFromWithOptimisticLock{})
	}
	u := inst.Status.Usage
	if len(u.Pending) == 0 || (u.NextAttemptTime != nil && now.Before(u.NextAttemptTime.Time)) {
		return nil
	}
	records := l.records(u)
	if len(records) > 0 {
		pctx, cancel := context.WithTimeout(ctx, r.Options.PushTimeout)
		err := r.Pusher.PushUsage(pctx, records)
		cancel()
		if err != nil {
			pushFailures.Inc()
			failed := u.DeepCopy()
			failed.Failures++
			next := metav1.NewTime(now.Add(r.backoff(failed.Failures)))
			failed.NextAttemptTime, failed.LastError = &next, truncate(err.Error(), 1024)
			return r.writeUsage(ctx, inst, failed, lock...)
		}
		recordsPushed.Add(float64(len(records)))
	}
	return r.writeUsage(ctx, inst, acknowledged(u), lock...)
}

func (r *Reconciler) backoff(failures int32) time.Duration {
	d := r.Options.BackoffBase
	for i := int32(1); i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
