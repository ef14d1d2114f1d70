package render

import (
	"bytes"
	"encoding/json"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

var jobType = metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}

// BackupJob is the Job run before a released tenant is deleted, or nil when the plan has no
// backup. Its name is always BackupJobName, whatever the template says, so a release retried
// after a restart finds the Job it started. It carries the common and plan labels. It is not
// part of the workload, so it is never listed in status.resources and pruning never removes it.
func BackupJob(inst *v1alpha1.MarketplaceInstance, plan *v1alpha1.MarketplacePlan) (*batchv1.Job, error) {
	if plan.Spec.Backup == nil {
		return nil, nil
	}
	data := NewTemplateData(inst, plan)
	job, err := renderJob(plan.Spec.Backup.JobTemplate, data)
	if err != nil {
		return nil, &TemplateError{Template: backupTemplate, Err: err}
	}
	job.TypeMeta = jobType
	job.Name = BackupJobName
	job.Namespace = data.Namespace
	job.Labels = mergeLabels(job.Labels, mergeLabels(Labels(inst), map[string]string{v1alpha1.LabelPlan: plan.Name}))
	return job, nil
}

// renderJob renders the backup template into a typed Job. Unknown fields are refused: decoding
// into the typed struct would otherwise drop a misspelt field and run a Job other than the one
// written.
func renderJob(text string, data TemplateData) (*batchv1.Job, error) {
	rendered, err := renderText(backupTemplate, text, data)
	if err != nil {
		return nil, err
	}
	obj, err := decodeOne(rendered)
	if err != nil {
		return nil, err
	}
	if obj.GetAPIVersion() != jobType.APIVersion || obj.GetKind() != jobType.Kind {
		return nil, fmt.Errorf("%w: must be a batch/v1 Job", ErrInvalidObject)
	}
	if err := checkNamespace(obj, data.Namespace); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidObject, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	job := &batchv1.Job{}
	if err := dec.Decode(job); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidObject, err)
	}
	return job, nil
}
