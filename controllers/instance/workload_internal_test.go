package instance

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestWorkloadReady(t *testing.T) {
	// deployment is a live copy at generation gen, its controller having seen observed.
	deployment := func(gen, observed, replicas, ready int64, available string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "generation": gen},
			"spec":     map[string]any{"replicas": replicas},
			"status": map[string]any{"observedGeneration": observed, "updatedReplicas": ready, "readyReplicas": ready,
				"conditions": []any{map[string]any{"type": "Available", "status": available}}},
		}}
	}
	for _, tc := range []struct {
		name    string
		live    *unstructured.Unstructured
		applied int64
		want    bool
	}{
		{"up to date and ready", deployment(2, 2, 1, 1, "True"), 2, true},
		{"up to date, not ready yet", deployment(2, 2, 1, 0, "False"), 2, false},
		// A cache that has not seen this pass's apply (or the last pass's) still holds the frozen
		// copy: ready, for the zero replicas it wanted then.
		{"older copy than the one applied", deployment(1, 1, 0, 0, "True"), 2, false},
		{"older copy, ready for the old plan", deployment(1, 1, 1, 1, "True"), 2, false},
		{"applied, its controller has not seen it yet", deployment(2, 1, 1, 1, "True"), 2, false},
		// Someone else (an HPA) changed the spec since: its controller must have seen that too.
		{"changed since our apply, not seen yet", deployment(3, 2, 2, 1, "True"), 2, false},
		{"changed since our apply, seen and ready", deployment(3, 3, 2, 2, "True"), 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := workloadReady(tc.live, tc.applied); got != tc.want {
				t.Errorf("workloadReady = %v, want %v", got, tc.want)
			}
		})
	}
}
