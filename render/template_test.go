package render_test

import (
	"maps"
	"reflect"
	"testing"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestNewTemplateData(t *testing.T) {
	cases := []struct {
		name string
		inst *v1alpha1.MarketplaceInstance
		plan *v1alpha1.MarketplacePlan
		want render.TemplateData
	}{
		{
			name: "resolved order, basic sample",
			inst: sampleInstance(t, "demo-basic-monthly"),
			plan: basicPlan(t),
			want: render.TemplateData{
				InstanceID: "87b94795-0603-4e24-8ae5-69420d60e3c8", Name: "cs2211181819b4lvs-000001",
				Namespace: sampleNamespace, Plan: "demo-basic", SKU: "demo-basic-monthly",
				CredentialsSecret: "marketplace-credentials",
				Values:            map[string]string{"replicas": "1", "domain": "apps.example.com", "image": "nginxinc/nginx-unprivileged:1.27"},
				Order:             render.OrderData{Quantity: 1, Params: map[string]string{}},
			},
		},
		{
			name: "unresolved order, plan without values",
			inst: testInstance("t1"),
			plan: &v1alpha1.MarketplacePlan{},
			want: render.TemplateData{
				InstanceID: "id-t1", Name: "t1", Namespace: "mpi-t1",
				CredentialsSecret: "marketplace-credentials", Values: map[string]string{},
				Order: render.OrderData{Quantity: 1, Params: map[string]string{}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := render.NewTemplateData(tc.inst, tc.plan)
			gotValues, wantValues := got.Values, tc.want.Values
			got.Values, tc.want.Values = nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if gotValues == nil || !maps.Equal(gotValues, wantValues) {
				t.Errorf("values %v, want %v", gotValues, wantValues)
			}
			gotValues["injected"] = "x"
			if _, aliased := tc.plan.Spec.Values["injected"]; aliased {
				t.Error("Values aliases the plan")
			}
		})
	}
}
