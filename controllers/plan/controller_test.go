package plan_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/controllers/plan"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := env.InstallAccess(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func TestPlanReadyReflectsTemplates(t *testing.T) {
	mgr, err := ctrl.NewManager(env.ManagerConfig, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		// A second run in the same process (go test -count) starts the same controller again.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&plan.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = mgr.Start(ctx) }()

	p := &saasv1alpha1.MarketplacePlan{
		ObjectMeta: metav1.ObjectMeta{Name: "checked"},
		Spec: saasv1alpha1.MarketplacePlanSpec{
			SKUs:      []saasv1alpha1.SKU{{ProductID: "P", SKUCode: "S"}},
			Manifests: []saasv1alpha1.ManifestTemplate{{Name: "cm", Template: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Values.missing }}}\n"}},
			AppInfo:   saasv1alpha1.AppInfoTemplates{FrontEndURL: "https://{{ .Name }}.example.com/"},
		},
	}
	g := NewWithT(t)
	g.Expect(env.Client.Create(ctx, p)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), p) })

	ready := func(g Gomega) *metav1.Condition {
		got := &saasv1alpha1.MarketplacePlan{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
		c := meta.FindStatusCondition(got.Status.Conditions, saasv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
		return c
	}
	g.Eventually(func(g Gomega) {
		c := ready(g)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(saasv1alpha1.ReasonInvalidTemplate))
		g.Expect(c.Message).To(ContainSubstring("template cm"))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	// Fixing the template makes the plan Ready.
	g.Eventually(func(g Gomega) {
		cur := &saasv1alpha1.MarketplacePlan{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(p), cur)).To(Succeed())
		cur.Spec.Values = map[string]string{"missing": "settings"}
		g.Expect(env.Client.Update(ctx, cur)).To(Succeed())
	}).WithTimeout(5 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(saasv1alpha1.ReasonTemplatesValid))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}
