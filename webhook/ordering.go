package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// aspect is one independently ordered part of an instance. Calls are ordered per aspect, not
// per instance: a renewal signed before a freeze still extends the expiry when it arrives after
// it, but can never thaw that newer freeze.
type aspect string

const (
	// aspectState is spec.state (FREEZE/UNFREEZE, and a renewal that lifts an expiry freeze).
	aspectState aspect = "state"
	// aspectExpiry is spec.expireTime (refreshInstance).
	aspectExpiry aspect = "expiry"
	// aspectOrder is spec.currentOrder (upgradeInstance, refreshInstance with a new order).
	aspectOrder aspect = "order"
)

func annotationKey(a aspect) string { return AnnotationLastCallPrefix + string(a) }

// lastApplied is the signed timestamp of the last call applied to the aspect; 0 when none.
func lastApplied(inst *saasv1alpha1.MarketplaceInstance, a aspect) int64 {
	n, err := strconv.ParseInt(inst.Annotations[annotationKey(a)], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// newer reports whether a call signed at ts may change the aspect: it is not older than the last
// call applied to it. Equal timestamps pass, so a call never blocks itself on a retry.
func newer(inst *saasv1alpha1.MarketplaceInstance, a aspect, ts int64) bool {
	return ts >= lastApplied(inst, a)
}

// markApplied records ts as the aspect's last applied call; it never moves backwards.
func markApplied(inst *saasv1alpha1.MarketplaceInstance, a aspect, ts int64) {
	if ts <= lastApplied(inst, a) {
		return
	}
	if inst.Annotations == nil {
		inst.Annotations = map[string]string{}
	}
	inst.Annotations[annotationKey(a)] = strconv.FormatInt(ts, 10)
}

// appliedBefore reports whether a call that `is` matches was applied to the instance before (its record
// is in status.history or still pending there, and was not ignored). KooGallery re-signs every
// retry, so the signed timestamp of a late retry says nothing about when its order was placed;
// but an order is applied once, and its retries only repeat it. A retry of a renewal arriving
// after the cancellation of that renewal period, or of an upgrade after the renewal with a
// change that replaced it, is thereby recognised as old whatever its timestamp. The history
// keeps the last MaxHistory calls: a retry of an order older than that is ordered by its
// timestamp alone.
func appliedBefore(inst *saasv1alpha1.MarketplaceInstance, is func(saasv1alpha1.Operation) bool) bool {
	for _, calls := range [][]saasv1alpha1.Operation{inst.Status.History, saasv1alpha1.PendingCalls(inst)} {
		for _, op := range calls {
			if is(op) && !strings.Contains(op.Detail, ignoredMark) {
				return true
			}
		}
	}
	return false
}

// ofOrder matches the calls that changed the instance for orderID.
func ofOrder(orderID string) func(saasv1alpha1.Operation) bool {
	return func(op saasv1alpha1.Operation) bool {
		return op.OrderID == orderID && op.Activity != koogallery.ActivityOrderNotify
	}
}

// ignoredMark opens the history detail of every call recorded but not applied.
const ignoredMark = " (ignored"

// outcome is what a mutation decided.
type outcome int

const (
	// applied: the call changed the instance (or confirmed it) and is recorded in history.
	applied outcome = iota
	// stale: the call is older than the last one applied to its aspect; it is acknowledged,
	// recorded as ignored, and changes nothing.
	stale
	// repeated: the call was applied before (same upgrade order); nothing is written.
	repeated
)

// mutation decides a call against the instance as read and changes it in place (spec and the
// ordering annotations only). It returns the outcome and the history detail. It is pure, so that
// it can be re-run on a fresh read after a refused write.
type mutation func(inst *saasv1alpha1.MarketplaceInstance) (outcome, string)

// maxAttempts bounds the retries of one write refused by its test; refusals come from
// concurrent calls on the same instance (several replicas, KooGallery's retries) and from a
// decision made on a cached copy that turned out stale. Each round lets at least one writer
// through, so this covers a burst of a dozen calls on one instance; the call timeout bounds the
// total anyway.
const maxAttempts = 12

var errConflicts = errors.New("the instance kept changing; giving up for this call")

// errGone is an instance deleted while a call was being applied to it.
var errGone = errors.New("instance no longer exists")

// apply decides a call on inst and writes the decision in one patch: the spec change, the
// ordering annotations and the call itself (AnnotationCalls, which the reconciler copies into
// status.history), tested against what the decision read (changePatch). A concurrent call, on
// this replica or another, or a spec edit since the read make the patch fail, and the call is
// decided again on the API server's copy. The first decision is made on the cache's copy when it
// holds this replica's last write to the instance (s.written), so a call usually costs that one
// write and no read. It returns the instance as written (as read when nothing was written) and
// the call's outcome.
func (s *Server) apply(ctx context.Context, c *call, inst *saasv1alpha1.MarketplaceInstance, op saasv1alpha1.Operation, mutate mutation) (*saasv1alpha1.MarketplaceInstance, outcome, error) {
	op.Time = metav1.NewTime(c.now)
	op.RequestTimestamp = c.ts
	op.Activity = c.activity
	if op.Result == "" {
		op.Result = koogallery.ResultSuccess
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 || !s.written.holds(inst) {
			rereads := rereadsCacheBehind
			if attempt > 0 {
				rereads = rereadsRefused
			}
			rereads.Inc()
			if err := s.reread(ctx, attempt, &inst); err != nil {
				return nil, 0, err
			}
		}
		if saasv1alpha1.HasCall(inst.Status.History, op) || saasv1alpha1.HasCall(saasv1alpha1.PendingCalls(inst), op) {
			// The same signed request, replayed to this replica after another applied it: its
			// change was written with its record, so there is nothing left to do.
			return inst, repeated, nil
		}
		next := inst.DeepCopy()
		out, detail := mutate(next)
		switch out {
		case repeated:
			return inst, repeated, nil
		case stale:
			next = inst.DeepCopy()
			detail += ignoredMark + ": older than the last applied call)"
		}
		entry := op
		entry.Detail = truncateRunes(detail, 256)
		if err := addCall(next, entry); err != nil {
			return nil, 0, err
		}
		patch, err := changePatch(inst, next)
		if err != nil {
			return nil, 0, err
		}
		err = s.client.Patch(ctx, next, patch)
		switch {
		case isTestFailed(err):
			continue
		case err != nil:
			return nil, 0, fmt.Errorf("patching instance %s: %w", inst.Name, notFoundAsGone(err))
		}
		s.written.remember(next)
		return next, out, nil
	}
	return nil, 0, errConflicts
}

// record writes a call that changes nothing but the record (an order notification, a call on an
// instance being released) with detail as its history entry.
func (s *Server) record(ctx context.Context, c *call, inst *saasv1alpha1.MarketplaceInstance, op saasv1alpha1.Operation) error {
	detail := op.Detail
	_, _, err := s.apply(ctx, c, inst, op, func(*saasv1alpha1.MarketplaceInstance) (outcome, string) { return applied, detail })
	return err
}

// addCall adds op to the calls inst holds for status.history: those status.history (as read)
// does not show yet, and op.
func addCall(inst *saasv1alpha1.MarketplaceInstance, op saasv1alpha1.Operation) error {
	var pending []saasv1alpha1.Operation
	for _, p := range saasv1alpha1.PendingCalls(inst) {
		if !saasv1alpha1.HasCall(inst.Status.History, p) {
			pending = append(pending, p)
		}
	}
	v, err := saasv1alpha1.EncodeCalls(append(pending, op))
	if err != nil {
		return fmt.Errorf("encoding the calls of instance %s: %w", inst.Name, err)
	}
	if inst.Annotations == nil {
		inst.Annotations = map[string]string{}
	}
	inst.Annotations[saasv1alpha1.AnnotationCalls] = v
	return nil
}

// reread fetches the instance from the API server. After a refused write (attempt > 0) it first
// pauses briefly, jittered, so racing replicas fall out of step.
func (s *Server) reread(ctx context.Context, attempt int, inst **saasv1alpha1.MarketplaceInstance) error {
	if attempt > 0 {
		d := time.Duration(min(attempt, 5)) * 10 * time.Millisecond
		t := time.NewTimer(d/2 + rand.N(d/2+1)) //nolint:gosec // jitter needs no cryptographic randomness
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting to retry: %w", ctx.Err())
		case <-t.C:
		}
	}
	fresh := &saasv1alpha1.MarketplaceInstance{}
	if err := s.reader.Get(ctx, client.ObjectKeyFromObject(*inst), fresh); err != nil {
		return fmt.Errorf("re-reading instance %s: %w", (*inst).Name, notFoundAsGone(err))
	}
	*inst = fresh
	return nil
}

func notFoundAsGone(err error) error {
	if apierrors.IsNotFound(err) {
		return errGone
	}
	return err
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
