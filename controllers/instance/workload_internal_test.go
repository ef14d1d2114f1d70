package instance

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestWorkloadReady(t *testing.T) {
	deployment := func(hash string, replicas, ready int64, available string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "generation": int64(2),
				"annotations": map[string]any{annotationAppliedHash: hash}},
			"spec": map[string]any{"replicas": replicas},
			"status": map[string]any{"observedGeneration": int64(2), "updatedReplicas": ready, "readyReplicas": ready,
				"conditions": []any{map[string]any{"type": "Available", "status": available}}},
		}}
		return u
	}
	for _, tc := range []struct {
		name    string
		live    *unstructured.Unstructured
		applied string
		want    bool
	}{
		{"up to date and ready", deployment("h1", 1, 1, "True"), "h1", true},
		{"up to date, not ready yet", deployment("h1", 1, 0, "False"), "h1", false},
		// A cache that has not seen this pass's apply (or the last pass's) still holds the frozen
		// copy: ready, for the zero replicas it wanted then.
		{"older copy than the one applied", deployment("frozen", 0, 0, "True"), "h1", false},
		{"older copy, ready for the old plan", deployment("basic", 1, 1, "True"), "h1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := workloadReady(tc.live, tc.applied); got != tc.want {
				t.Errorf("workloadReady = %v, want %v", got, tc.want)
			}
		})
	}
}
