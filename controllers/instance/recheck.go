package instance

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// Re-checks: KooGallery stops retrying a failed FREEZE or releaseInstance after an hour, so a
// resolved order is asked of Query Order again on a slow schedule, and what it says now is
// acted on. What Query Order can show is the order line itself: its expiry (which the
// self-freeze at the effective expiry then enforces), its SKU and quantity (which the tenant is
// moved to), its buyer parameters. A re-check that finds a change records it in status.history
// and as an event. A re-check that fails keeps the tenant on the order as last resolved and backs
// off like any failed query; it never flips OrderResolved.
const (
	defaultOrderRecheckInterval = 24 * time.Hour
	defaultOrderRecheckQPS      = 0.2
	// ActivityOrderRecheck is the status.history activity of a re-check that found a change.
	ActivityOrderRecheck = "orderRecheck"
)

// recheckDue reports whether the resolved order's Query Order answer is older than the re-check
// interval, spread over instances by their name so that a fleet does not come due at once. When
// it is not, the pass is asked to come back when it is.
func (r *Reconciler) recheckDue(s *scope) bool {
	every := r.recheckInterval()
	o := s.inst.Status.Order
	if every < 0 || o == nil {
		return false
	}
	checked := o.CheckedTime
	if checked == nil {
		// Resolved by a build that did not record the time: counted from the resolution, so an
		// upgrade of the operator does not rewrite every instance at once.
		c := meta.FindStatusCondition(s.inst.Status.Conditions, saasv1alpha1.ConditionOrderResolved)
		if c == nil {
			return false
		}
		checked = &c.LastTransitionTime
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(s.inst.Name))
	spread := time.Duration(int64(h.Sum32()) % max(int64(every/10), 1))
	due := checked.Add(every + spread)
	if s.now.Before(due) {
		s.requeueIn(due.Sub(s.now))
		return false
	}
	return true
}

func (r *Reconciler) recheckInterval() time.Duration {
	if every := r.Options.OrderRecheckInterval; every != 0 {
		return every
	}
	return defaultOrderRecheckInterval
}

// recheckOrder asks Query Order again for the effective order, within the re-checks' shared
// rate, and takes its answer.
func (r *Reconciler) recheckOrder(ctx context.Context, s *scope, orderID, lineID string) {
	st := &s.inst.Status
	if q := st.OrderQuery; q != nil && q.NextAttemptTime != nil && s.now.Before(q.NextAttemptTime.Time) {
		s.requeueIn(q.NextAttemptTime.Sub(s.now))
		return
	}
	if !r.recheckLimit.Allow() {
		s.requeueIn(time.Minute)
		return
	}
	resolved, err := r.queryOrder(ctx, orderID, lineID)
	if err != nil {
		r.backOffQuery(s, err)
		ctrl.LoggerFrom(ctx).Info("order re-check failed; the tenant keeps the order as last resolved", "order", orderID, "error", err.Error())
		return
	}
	resolved.CheckedTime = &metav1.Time{Time: s.now}
	if change := orderChange(st.Order, resolved); change != "" {
		detail := truncate("Query Order re-check: "+change, 256)
		st.History, _ = saasv1alpha1.MergeCalls(st.History, []saasv1alpha1.Operation{{
			Time: metav1.NewTime(s.now), Activity: ActivityOrderRecheck, OrderID: orderID, Detail: detail,
		}})
		if r.Recorder != nil {
			r.Recorder.Eventf(s.inst, nil, "Normal", "OrderChanged", "Recheck", "%s", detail)
		}
	}
	st.Order, st.OrderQuery = resolved, nil
	s.requeueIn(r.recheckInterval())
}

// orderChange describes what differs between two answers of Query Order for the same order, ""
// when nothing the tenant depends on does.
func orderChange(old, cur *saasv1alpha1.ResolvedOrder) string {
	var out []string
	if !old.ExpireTime.Equal(cur.ExpireTime) {
		out = append(out, fmt.Sprintf("expires %s (was %s)", timeText(cur.ExpireTime), timeText(old.ExpireTime)))
	}
	if old.SKUCode != cur.SKUCode || old.ProductID != cur.ProductID {
		out = append(out, fmt.Sprintf("SKU %s (was %s)", cur.SKUCode, old.SKUCode))
	}
	if old.LinearValue != cur.LinearValue {
		out = append(out, fmt.Sprintf("quantity %d (was %d)", cur.LinearValue, old.LinearValue))
	}
	if !slices.Equal(old.ExtendParams, cur.ExtendParams) {
		out = append(out, "buyer parameters changed")
	}
	return strings.Join(out, ", ")
}

func timeText(t *metav1.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}
