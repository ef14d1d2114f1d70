package render_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestBackupJob(t *testing.T) {
	withBackup := func(template string) *v1alpha1.MarketplacePlan {
		plan := testPlan()
		plan.Spec.Backup = &v1alpha1.BackupSpec{JobTemplate: template}
		return plan
	}
	const job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: anything\n  labels: {team: data, saas.marketplace.dev/instance: x}\nspec:\n  template:\n    metadata: {labels: {app: backup}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: b, image: busybox, args: ['{{ .InstanceID }}']}]\n"
	cases := []struct {
		name     string
		plan     *v1alpha1.MarketplacePlan
		wantNil  bool
		wantErr  error
		contains []string
	}{
		{name: "no backup", plan: basicPlan(t), wantNil: true},
		{name: "pro sample", plan: proPlan(t)},
		{name: "template labels kept, ours win", plan: withBackup(job)},
		{name: "the tenant namespace may be written", plan: withBackup(strings.Replace(job, "name: anything", "name: anything\n  namespace: '{{ .Namespace }}'", 1))},
		{name: "not a Job", plan: withBackup("apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n"), wantErr: render.ErrInvalidObject, contains: []string{"template backup.jobTemplate:", "batch/v1 Job"}},
		{name: "old Job version", plan: withBackup("apiVersion: batch/v2\nkind: Job\nmetadata: {name: b}\n"), wantErr: render.ErrInvalidObject},
		{name: "unknown field", plan: withBackup(strings.Replace(job, "restartPolicy", "restartPolcy", 1)), wantErr: render.ErrInvalidObject, contains: []string{"restartPolcy"}},
		{name: "foreign namespace", plan: withBackup(strings.Replace(job, "name: anything", "name: anything\n  namespace: default", 1)), wantErr: render.ErrForeignNamespace},
		{name: "two documents", plan: withBackup(job + "---\n" + job), wantErr: render.ErrObjectCount},
		{name: "missing value", plan: withBackup(strings.Replace(job, ".InstanceID", ".Values.bucket", 1)), contains: []string{"template backup.jobTemplate:", "bucket"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := sampleInstance(t, "")
			got, err := render.BackupJob(inst, tc.plan)
			if tc.wantErr != nil || tc.contains != nil {
				var te *render.TemplateError
				if !errors.As(err, &te) || te.Template != "backup.jobTemplate" {
					t.Fatalf("want a TemplateError for backup.jobTemplate, got %v", err)
				}
				want := tc.wantErr
				if want == nil {
					want = err
				}
				checkErr(t, err, want, tc.contains, nil)
				if got != nil {
					t.Error("job returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNil {
				if got != nil {
					t.Fatalf("want nil, got %v", got)
				}
				return
			}
			wantLabels := maps.Clone(commonLabels)
			wantLabels["saas.marketplace.dev/plan"] = tc.plan.Name
			if tc.plan.Name == "small" {
				wantLabels["team"] = "data"
			}
			checkMeta(t, got.TypeMeta, got.ObjectMeta, metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, "marketplace-backup", sampleNamespace, wantLabels)
			if _, pruneable := got.Labels["saas.marketplace.dev/template"]; pruneable {
				t.Error("the backup Job carries a template label and would be pruned")
			}
			c := got.Spec.Template.Spec.Containers[0]
			if !strings.Contains(strings.Join(append(c.Command, c.Args...), " "), "87b94795-0603-4e24-8ae5-69420d60e3c8") {
				t.Errorf("instance ID not rendered into %v %v", c.Command, c.Args)
			}
			if tc.plan.Name == "small" && !maps.Equal(got.Spec.Template.Labels, map[string]string{"app": "backup"}) {
				t.Errorf("pod template labels changed: %v", got.Spec.Template.Labels)
			}
		})
	}
}
