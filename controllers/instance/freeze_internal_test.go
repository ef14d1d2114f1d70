package instance

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

// Freezing records the count to restore before it scales anything; unfreezing restores the
// recorded count, or the one an older operator version left in an annotation.
func TestAdjustForFreeze(t *testing.T) {
	deployment := func(replicas *int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "worker"}, "spec": map[string]any{}}}
		if replicas != nil {
			u.Object["spec"] = map[string]any{"replicas": *replicas}
		}
		return u
	}
	for _, tc := range []struct {
		name             string
		plan, live       *int64 // spec.replicas rendered and live; nil: unset, or no live object
		recorded, legacy *int32
		frozen           bool
		wantRecord       *int32
		wantApply        bool
		wantReplicas     *int64 // in what is applied; nil: unset
		noLive           bool
	}{
		{name: "freeze: record the live count first", live: ptr.To[int64](2), frozen: true, wantRecord: ptr.To[int32](2)},
		{name: "freeze: record an older version's count first", live: ptr.To[int64](0), legacy: ptr.To[int32](3), frozen: true,
			wantRecord: ptr.To[int32](3)},
		{name: "freeze a new object: the plan's count", plan: ptr.To[int64](4), noLive: true, frozen: true, wantRecord: ptr.To[int32](4),
			wantReplicas: ptr.To[int64](4)},
		{name: "freeze once recorded", live: ptr.To[int64](2), recorded: ptr.To[int32](2), frozen: true, wantRecord: ptr.To[int32](2),
			wantApply: true, wantReplicas: ptr.To[int64](0)},
		{name: "unfreeze: the recorded count", live: ptr.To[int64](0), recorded: ptr.To[int32](2), wantApply: true, wantReplicas: ptr.To[int64](2)},
		{name: "unfreeze: an older version's count", live: ptr.To[int64](0), legacy: ptr.To[int32](3), wantApply: true, wantReplicas: ptr.To[int64](3)},
		{name: "unfreeze: the plan's count wins", plan: ptr.To[int64](1), live: ptr.To[int64](0), recorded: ptr.To[int32](2), wantApply: true,
			wantReplicas: ptr.To[int64](1)},
		{name: "active: someone else's count stays", live: ptr.To[int64](5), wantApply: true, wantReplicas: ptr.To[int64](5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desired := deployment(tc.plan)
			var live *unstructured.Unstructured
			if !tc.noLive {
				live = deployment(tc.live)
			}
			record, apply := adjustForFreeze(desired, live, tc.recorded, tc.legacy, tc.frozen)
			if apply != tc.wantApply || !equalPtr(record, tc.wantRecord) {
				t.Errorf("record %v, apply %v; want %v, %v", deref(record), apply, deref(tc.wantRecord), tc.wantApply)
			}
			got, found, _ := unstructured.NestedInt64(desired.Object, "spec", "replicas")
			if found != (tc.wantReplicas != nil) || found && got != *tc.wantReplicas {
				t.Errorf("replicas %d (set %v), want %v", got, found, deref(tc.wantReplicas))
			}
		})
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
