package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// GetInstance reads the instance named name through c, failing g if it cannot.
func GetInstance(g gomega.Gomega, c client.Reader, name string) *saasv1alpha1.MarketplaceInstance {
	inst := &saasv1alpha1.MarketplaceInstance{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Name: name}, inst)).To(gomega.Succeed())
	return inst
}

// WaitReady waits until a running operator reports the instance Ready and returns it. envtest
// runs no kube-controller-manager, so it marks the tenant's Deployments ready as they appear.
func WaitReady(t testing.TB, c client.Client, name string) *saasv1alpha1.MarketplaceInstance {
	t.Helper()
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		inst := GetInstance(g, c, name)
		g.Expect(inst.Status.Namespace).NotTo(gomega.BeEmpty(), "the tenant namespace in the status")
		if meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionReady) {
			return
		}
		_, err := MarkDeploymentsReady(context.Background(), c, inst.Status.Namespace)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		inst = GetInstance(g, c, name)
		g.Expect(meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionReady)).To(gomega.BeTrue(),
			"conditions %+v", inst.Status.Conditions)
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(gomega.Succeed())
	return GetInstance(gomega.NewWithT(t), c, name)
}

// ForceDelete deletes the instance and drops its finalizers, for a test's cleanup: a test that
// checks the release does so itself, and what one test leaves must not hold up the next.
func ForceDelete(c client.Client, name string) {
	ctx := context.Background()
	cur := &saasv1alpha1.MarketplaceInstance{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, cur); err != nil {
		return
	}
	_ = c.Delete(ctx, cur)
	if len(cur.Finalizers) > 0 {
		p := client.MergeFrom(cur.DeepCopy())
		cur.Finalizers = nil
		_ = c.Patch(ctx, cur, p)
	}
}
