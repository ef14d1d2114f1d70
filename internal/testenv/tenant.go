package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// The sample plans of config/samples and the KooGallery SKUs they serve, which tests order
// (TestSamplePlans checks them against the files).
const (
	// BasicPlan is in BasicPlanFile and serves BasicProduct/BasicSKU.
	BasicPlan     = "demo-basic"
	BasicPlanFile = "saas_v1alpha1_marketplaceplan_basic.yaml"
	BasicProduct  = "OFFI000000000000001"
	BasicSKU      = "demo-basic-monthly"
	// ProPlan is in ProPlanFile and serves ProProduct/ProSKU.
	ProPlan     = "demo-pro"
	ProPlanFile = "saas_v1alpha1_marketplaceplan_pro.yaml"
	ProProduct  = "OFFI000000000000003"
	ProSKU      = "demo-pro-monthly"
)

// SamplePlanFiles are the MarketplacePlans in config/samples that integration suites install.
var SamplePlanFiles = []string{BasicPlanFile, ProPlanFile}

// CreateSamplePlans creates the sample plans of config/samples (BasicPlan, ProPlan).
func CreateSamplePlans(ctx context.Context, c client.Client) error {
	for _, f := range SamplePlanFiles {
		plan, err := SamplePlan(f)
		if err != nil {
			return err
		}
		if err := c.Create(ctx, plan); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s: %w", f, err)
		}
	}
	return nil
}

// SamplePlan reads the MarketplacePlan of config/samples/file (one of SamplePlanFiles).
func SamplePlan(file string) (*saasv1alpha1.MarketplacePlan, error) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "config", "samples", file)) //nolint:gosec // fixed repository files
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	plan := &saasv1alpha1.MarketplacePlan{}
	if err := yaml.Unmarshal(b, plan); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", file, err)
	}
	return plan, nil
}

// MarkDeploymentsReady plays kube-controller-manager, which envtest does not run: every
// Deployment in ns reports its wanted replicas updated, ready and available. It returns how many
// Deployments it found.
func MarkDeploymentsReady(ctx context.Context, c client.Client, ns string) (int, error) {
	list := &appsv1.DeploymentList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return 0, fmt.Errorf("listing deployments: %w", err)
	}
	for i := range list.Items {
		d := &list.Items[i]
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want, ReadyReplicas: want, AvailableReplicas: want,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now}},
		}
		if err := c.Status().Update(ctx, d); err != nil {
			return 0, fmt.Errorf("updating deployment status: %w", err)
		}
	}
	return len(list.Items), nil
}

// FinalizeNamespace plays the namespace controller, which envtest does not run: a namespace
// being deleted loses its finalizers and goes. A namespace already gone is fine.
func (e *Env) FinalizeNamespace(ctx context.Context, name string) error {
	kube, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	ns, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting namespace: %w", err)
	}
	if ns.DeletionTimestamp == nil {
		return fmt.Errorf("namespace %s is not being deleted", name)
	}
	ns.Spec.Finalizers = nil
	if _, err := kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalizing namespace: %w", err)
	}
	return nil
}

// CompleteJob plays the Job controller, which envtest does not run: the Job reports success.
func CompleteJob(ctx context.Context, c client.Client, ns, name string) error {
	job := &batchv1.Job{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, job); err != nil {
		return fmt.Errorf("getting job: %w", err)
	}
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.CompletionTime = &now
	job.Status.Succeeded = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if err := c.Status().Update(ctx, job); err != nil {
		return fmt.Errorf("updating job status: %w", err)
	}
	return nil
}

// SetQuotaUsed plays the ResourceQuota controller, which envtest does not run: the tenant
// quota of ns reports used.
func SetQuotaUsed(ctx context.Context, c client.Client, ns string, used corev1.ResourceList) error {
	q := &corev1.ResourceQuota{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.QuotaName}, q); err != nil {
		return fmt.Errorf("getting the tenant quota: %w", err)
	}
	q.Status.Hard = q.Spec.Hard
	q.Status.Used = used
	if err := c.Status().Update(ctx, q); err != nil {
		return fmt.Errorf("updating the tenant quota status: %w", err)
	}
	return nil
}
