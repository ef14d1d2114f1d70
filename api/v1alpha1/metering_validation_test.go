package v1alpha1_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

// The API server holds spec.metering to what the usage controller can meter.
func TestMeteringValidation(t *testing.T) {
	base := readObjects(t, filepath.Join(testenv.RepoRoot(), "config", "samples", "saas_v1alpha1_marketplaceplan_metered.yaml"))[0]
	for name, tc := range map[string]struct {
		metering map[string]any
		refused  string
	}{
		"app reported":             {map[string]any{"unit": "request", "source": "AppReported", "serviceAccountName": "app"}, ""},
		"running time in hours":    {map[string]any{"unit": "hour", "source": "RunningTime"}, ""},
		"running time in GB":       {map[string]any{"unit": "GB", "source": "RunningTime"}, "unit must be hour"},
		"account for running time": {map[string]any{"unit": "hour", "source": "RunningTime", "serviceAccountName": "app"}, "only for AppReported"},
		"unknown source":           {map[string]any{"unit": "hour", "source": "Guessed"}, "Unsupported value"},
		"no unit":                  {map[string]any{"source": "AppReported"}, "unit: Required"},
		"dashboard not http":       {map[string]any{"unit": "hour", "source": "RunningTime", "dashboardUrl": "javascript:alert(1)"}, "dashboardUrl"},
	} {
		t.Run(name, func(t *testing.T) {
			obj := base.DeepCopy()
			if err := unstructured.SetNestedField(obj.Object, tc.metering, "spec", "metering"); err != nil {
				t.Fatal(err)
			}
			err := env.Client.Create(context.Background(), obj, client.DryRunAll)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("want a refusal with %q, got %v", tc.refused, err)
			}
		})
	}
}
