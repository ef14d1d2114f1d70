package v1alpha1

import (
	"encoding/json"
	"regexp"
	"slices"
	"unicode/utf8"
)

// resultPattern is what a KooGallery result code looks like.
var resultPattern = regexp.MustCompile(`^[0-9]{6}$`)

// EncodeCalls is the AnnotationCalls value of calls, keeping the newest MaxHistory.
func EncodeCalls(calls []Operation) (string, error) {
	if n := len(calls) - MaxHistory; n > 0 {
		calls = calls[n:]
	}
	b, err := json.Marshal(calls)
	return string(b), err
}

// PendingCalls decodes inst's AnnotationCalls. Anyone who may patch the instance can edit the
// annotation, so entries that status.history could not hold (the CRD's limits) are dropped
// rather than left to make every status write fail; an unreadable value counts as empty.
func PendingCalls(inst *MarketplaceInstance) []Operation {
	v, ok := inst.Annotations[AnnotationCalls]
	if !ok {
		return nil
	}
	var calls []Operation
	if json.Unmarshal([]byte(v), &calls) != nil {
		return nil
	}
	return slices.DeleteFunc(calls, func(op Operation) bool { return !validOperation(op) })
}

func validOperation(op Operation) bool {
	return op.Activity != "" && len(op.Activity) <= 32 && len(op.OrderID) <= 64 &&
		utf8.RuneCountInString(op.Detail) <= 256 && (op.Result == "" || resultPattern.MatchString(op.Result)) &&
		!op.Time.IsZero()
}

// SameCall reports whether a and b record the same call: KooGallery signs every call, each
// retry included, when it sends it, so the activity, the signed timestamp and the order
// identify one signed request.
func SameCall(a, b Operation) bool {
	return a.Activity == b.Activity && a.RequestTimestamp == b.RequestTimestamp && a.OrderID == b.OrderID
}

// HasCall reports whether calls holds op (SameCall).
func HasCall(calls []Operation, op Operation) bool {
	return slices.ContainsFunc(calls, func(c Operation) bool { return SameCall(c, op) })
}

// MergeCalls adds to history the calls of pending it does not hold, in the order they were
// applied, keeping the newest MaxHistory, and reports whether that changed history. A call
// dropped from a full history may still be pending: it sorts oldest and is dropped again, so
// merging twice gives what merging once gave.
func MergeCalls(history, pending []Operation) ([]Operation, bool) {
	h := history
	added := false
	for _, op := range pending {
		if !HasCall(h, op) {
			h = append(slices.Clip(h), op)
			added = true
		}
	}
	if !added {
		return history, false
	}
	slices.SortStableFunc(h, func(a, b Operation) int { return a.Time.Time.Compare(b.Time.Time) })
	if n := len(h) - MaxHistory; n > 0 {
		h = slices.Clone(h[n:])
	}
	return h, !slices.EqualFunc(h, history, SameCall)
}
