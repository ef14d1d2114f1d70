package instance

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestWorkloadReady(t *testing.T) {
	deployment := func(observed, replicas, ready int64, available string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "generation": int64(2)},
			"spec":     map[string]any{"replicas": replicas},
			"status": map[string]any{"observedGeneration": observed, "updatedReplicas": ready, "readyReplicas": ready,
				"conditions": []any{map[string]any{"type": "Available", "status": available}}},
		}}
	}
	for _, tc := range []struct {
		name string
		live *unstructured.Unstructured
		want bool
	}{
		{"up to date and ready", deployment(2, 1, 1, "True"), true},
		{"up to date, not ready yet", deployment(2, 1, 0, "False"), false},
		// Its controller has not seen the latest spec: the status is the previous one's, such as
		// ready for the zero replicas of a freeze.
		{"status of an older spec", deployment(1, 1, 1, "True"), false},
		{"scaled to zero", deployment(2, 0, 0, "False"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := workloadReady(tc.live); got != tc.want {
				t.Errorf("workloadReady = %v, want %v", got, tc.want)
			}
		})
	}
}
