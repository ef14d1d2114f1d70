package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
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
// it can be re-run on a fresh read after a conflict.
type mutation func(inst *saasv1alpha1.MarketplaceInstance) (outcome, string)

// maxAttempts bounds the optimistic-lock retries of one write; conflicts come from the
// reconciler's status patches and from concurrent calls on the same instance (several replicas,
// KooGallery's retries). Each round lets at least one writer through, so this covers a burst of
// a dozen calls on one instance; the call timeout bounds the total anyway.
const maxAttempts = 12

var errConflicts = errors.New("the instance kept changing; giving up for this call")

// errGone is an instance deleted while a call was being applied to it.
var errGone = errors.New("instance no longer exists")

// apply runs mutate against inst as the API server has it (reread) and writes the result: the
// spec change and the ordering annotations in one patch that tests the ordering annotations as
// read (changePatch), so the ordering check and the change it guards are atomic across replicas
// (a concurrent call makes the patch fail, and this one is decided again on a fresh read). Then
// the call goes into status.history.
func (s *Server) apply(ctx context.Context, c *call, inst *saasv1alpha1.MarketplaceInstance, op saasv1alpha1.Operation, mutate mutation) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := s.reread(ctx, attempt, &inst); err != nil {
			return err
		}
		next := inst.DeepCopy()
		out, detail := mutate(next)
		op.Detail = detail
		switch out {
		case repeated:
			return nil
		case stale:
			op.Detail = detail + " (ignored: older than the last applied call)"
			return s.record(ctx, c, inst, op)
		}
		if !equality.Semantic.DeepEqual(inst.Spec, next.Spec) || !equality.Semantic.DeepEqual(inst.Annotations, next.Annotations) {
			patch, err := changePatch(inst, next)
			if err != nil {
				return err
			}
			err = s.client.Patch(ctx, next, patch)
			if isTestFailed(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("patching instance %s: %w", inst.Name, notFoundAsGone(err))
			}
		}
		return s.record(ctx, c, next, op)
	}
	return errConflicts
}

// record appends op to the instance's history. The history is an atomic list, so two replicas
// appending at once must not overwrite each other, and a replica whose cache has not seen another's
// entry yet must re-read and find the call already recorded (inHistory) instead of adding it
// twice. So the write tests the list as read (historyPatch): the reconciler's status writes, which
// never carry the history, do not make it fail, as a resourceVersion lock would after nearly
// every accepted call.
func (s *Server) record(ctx context.Context, c *call, inst *saasv1alpha1.MarketplaceInstance, op saasv1alpha1.Operation) error {
	op.Time = metav1.NewTime(c.now)
	op.RequestTimestamp = c.ts
	op.Activity = c.activity
	if op.Result == "" {
		op.Result = "000000"
	}
	op.Detail = truncateRunes(op.Detail, 256)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := s.reread(ctx, attempt, &inst); err != nil {
				return err
			}
		}
		if inHistory(inst.Status.History, op) {
			return nil
		}
		next := inst.DeepCopy()
		next.Status.History = appendHistory(next.Status.History, op)
		patch, err := historyPatch(inst, next)
		if err != nil {
			return err
		}
		err = s.client.Status().Patch(ctx, next, patch)
		switch {
		case err == nil:
			return nil
		case apierrors.IsNotFound(err):
			// Released meanwhile: there is no history left to write to.
			return nil
		case !apierrors.IsConflict(err) && !isTestFailed(err):
			return fmt.Errorf("recording history of instance %s: %w", inst.Name, err)
		}
	}
	return errConflicts
}

// inHistory reports whether h holds the call op records. A call is known by its activity, its
// signed timestamp and its order: KooGallery signs every call, each retry included, when it sends
// it, so only the same signed request served twice matches. That happens when a request is
// replayed to another replica, whose replay cache has not seen its nonce: the call changes nothing
// the second time (the ordering above), and must not add a second entry either.
func inHistory(h []saasv1alpha1.Operation, op saasv1alpha1.Operation) bool {
	for i := range h {
		if h[i].Activity == op.Activity && h[i].RequestTimestamp == op.RequestTimestamp && h[i].OrderID == op.OrderID {
			return true
		}
	}
	return false
}

// reread fetches the instance from the API server. A call is decided on that copy, not the
// cache's: under load the cache can lag by seconds, and a decision on an older copy fails its
// patch's test, costing a refused write, a pause and a retry. After a conflict (attempt > 0) it first pauses briefly,
// jittered, so racing replicas fall out of step.
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

// appendHistory appends op, dropping the oldest entries beyond MaxHistory.
func appendHistory(h []saasv1alpha1.Operation, op saasv1alpha1.Operation) []saasv1alpha1.Operation {
	h = append(h, op)
	if n := len(h) - saasv1alpha1.MaxHistory; n > 0 {
		h = append([]saasv1alpha1.Operation(nil), h[n:]...)
	}
	return h
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
