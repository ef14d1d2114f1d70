package usage_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// tenantApp is the tenant application's client: its namespace's default ServiceAccount.
func tenantApp(t *testing.T, ns string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":default",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func report(g Gomega, c client.Client, ns, value string) {
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = ns, saasv1alpha1.UsageConfigMap
	patch := []byte(`{"data":{"value":"` + value + `"}}`)
	g.Expect(c.Patch(context.Background(), cm, client.RawPatch(types.MergePatchType, patch))).To(Succeed())
}

// A tenant billed on what its application reports: the application can patch its usage
// ConfigMap and nothing else; each increase is pushed once, a decrease is never trusted, and the
// value reported just before the release is in the final push, which ends at the release.
func TestAppReportedLifecycle(t *testing.T) {
	startOperator(t, interval, nil)
	inst := order(t, meteredProduct, meteredSKU)
	create(t, inst)
	ready := waitReady(t, inst.Name)
	ns := ready.Status.Namespace
	ctx := context.Background()
	g := NewWithT(t)

	cm := &corev1.ConfigMap{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: saasv1alpha1.UsageConfigMap}, cm)).To(Succeed())
		role := &rbacv1.Role{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: saasv1alpha1.UsageReporterRole}, role)).To(Succeed())
		g.Expect(role.Rules).To(Equal([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{saasv1alpha1.UsageConfigMap}, Verbs: []string{"get", "patch"}}}))
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: saasv1alpha1.UsageReporterRole}, &rbacv1.RoleBinding{})).To(Succeed())
	}).WithTimeout(15 * time.Second).Should(Succeed())
	g.Expect(cm.Data).To(Equal(map[string]string{saasv1alpha1.UsageValueKey: "0"}))
	g.Expect(render.OwnedBy(cm, ready)).To(BeTrue())
	g.Expect(controllerutil.ContainsFinalizer(cm, saasv1alpha1.FinalizerUsage)).To(BeTrue())

	app := tenantApp(t, ns)
	g.Eventually(func(g Gomega) { report(g, app, ns, "10.5") }).WithTimeout(5 * time.Second).Should(Succeed())
	for _, denied := range []error{
		app.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.CredentialsSecretName}, &corev1.Secret{}),
		app.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}}),
		app.Delete(ctx, cm.DeepCopy()),
	} {
		g.Expect(apierrors.IsForbidden(denied)).To(BeTrue(), "want Forbidden, got %v", denied)
	}

	g.Eventually(func(g Gomega) { g.Expect(get(g, inst.Name).Status.Usage).To(HaveField("PushedValue", "10.5")) }).
		WithTimeout(15 * time.Second).Should(Succeed())
	report(g, app, ns, "25")
	g.Eventually(func(g Gomega) { g.Expect(get(g, inst.Name).Status.Usage).To(HaveField("PushedValue", "25")) }).
		WithTimeout(15 * time.Second).Should(Succeed())
	report(g, app, ns, "20")
	pushedUntil(t, inst.Name, time.Now().Add(2*interval))
	g.Expect(get(g, inst.Name).Status.Usage.PushedValue).To(Equal("25"), "a decrease was trusted")
	report(g, app, ns, "30.25")
	releasedAt := release(t, inst.Name)

	got := received(inst.Spec.InstanceID)
	g.Expect(got).NotTo(BeEmpty())
	var total float64
	begin := got[0].BeginTime
	for _, r := range got {
		g.Expect(r.BeginTime).NotTo(BeTemporally("<", begin), "records overlap: %v", got)
		begin = r.EndTime
		total += r.UsageValue
	}
	// The last period ends at the release, or a second after a period that ended there.
	g.Expect(got[len(got)-1].EndTime).To(BeTemporally("~", releasedAt.Add(time.Second/2), time.Second/2))
	g.Expect(total).To(BeNumerically("~", 30.25, 1e-9))
	iu := koo.InstanceUsage(inst.Spec.InstanceID)
	g.Expect(iu.Duplicates+iu.Conflicts+iu.Overlaps).To(BeZero(), "%+v", iu)

	// The namespace's deletion waited for the usage ConfigMap, which went once the last push was
	// acknowledged.
	g.Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(cm), cm))).To(BeTrue())
}
