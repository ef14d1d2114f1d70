package instance

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

func call(ts int64) saasv1alpha1.Operation {
	return saasv1alpha1.Operation{Time: metav1.NewTime(time.UnixMilli(ts).UTC()), Activity: "refreshInstance", RequestTimestamp: ts, Result: "000000"}
}

// History keeps the newest MaxHistory calls in the order they were applied, and a call the
// annotation still holds after the history dropped it does not come back or change anything.
func TestMergeCallsBoundedAndStable(t *testing.T) {
	inst := &saasv1alpha1.MarketplaceInstance{}
	var pending []saasv1alpha1.Operation
	for i := range saasv1alpha1.MaxHistory + 5 {
		inst.Status.History = append(inst.Status.History, call(int64(1000+i)))
	}
	inst.Status.History = inst.Status.History[5:]
	for i := range 3 {
		pending = append(pending, call(int64(1000+i)), call(int64(2000+i)))
	}
	v, err := saasv1alpha1.EncodeCalls(pending)
	if err != nil {
		t.Fatal(err)
	}
	inst.Annotations = map[string]string{saasv1alpha1.AnnotationCalls: v}
	mergeCalls(inst)
	h := inst.Status.History
	if len(h) != saasv1alpha1.MaxHistory || h[0].RequestTimestamp != 1008 || h[len(h)-1].RequestTimestamp != 2002 {
		t.Fatalf("history %d entries, %d to %d", len(h), h[0].RequestTimestamp, h[len(h)-1].RequestTimestamp)
	}
	again := inst.DeepCopy()
	mergeCalls(again)
	for i := range h {
		if again.Status.History[i] != h[i] {
			t.Fatalf("a second merge changed entry %d: %+v", i, again.Status.History[i])
		}
	}
}

// The annotation keeps the newest MaxHistory calls, and an edited value never reaches status.
func TestPendingCallsBoundedAndChecked(t *testing.T) {
	var calls []saasv1alpha1.Operation
	for i := range saasv1alpha1.MaxHistory + 3 {
		calls = append(calls, call(int64(i)))
	}
	v, err := saasv1alpha1.EncodeCalls(calls)
	if err != nil {
		t.Fatal(err)
	}
	inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{saasv1alpha1.AnnotationCalls: v}}}
	if got := saasv1alpha1.PendingCalls(inst); len(got) != saasv1alpha1.MaxHistory || got[0].RequestTimestamp != 3 {
		t.Fatalf("%d calls, first %d", len(got), got[0].RequestTimestamp)
	}
	inst.Annotations[saasv1alpha1.AnnotationCalls] = `[{"time":"2026-01-01T00:00:00Z","activity":"x","result":"bad"},{"activity":"no time"},` +
		`{"time":"2026-01-01T00:00:00Z","activity":"ok","result":"000000"}]`
	if got := saasv1alpha1.PendingCalls(inst); len(got) != 1 || got[0].Activity != "ok" {
		t.Fatalf("%+v", got)
	}
	inst.Annotations[saasv1alpha1.AnnotationCalls] = `{not json`
	if got := saasv1alpha1.PendingCalls(inst); got != nil {
		t.Fatalf("%+v", got)
	}
}
