package instance_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/controllers/instance"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestProvisionToReady(t *testing.T) {
	op := startOperator(t, instance.Options{IngressNamespaces: []string{"ingress-nginx"}})
	before := reconciles(t)
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	got := waitReady(t, inst.Name)
	t.Logf("provisioning one instance to Ready: %.0f reconciles, %d API writes by the operator",
		reconciles(t)-before, op.writes.Load())

	g := NewWithT(t)
	ctx := context.Background()
	ns := render.NamespaceName(inst.Name)
	g.Expect(got.Status.Namespace).To(Equal(ns))
	g.Expect(got.Status.Plan).To(Equal(testenv.BasicPlan))
	g.Expect(got.Status.Phase).To(Equal("Ready"))
	g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
	g.Expect(got.Status.Order).NotTo(BeNil())
	g.Expect(got.Status.Order.SKUCode).To(Equal(testenv.BasicSKU))
	g.Expect(got.Status.Order.ChargingMode).To(Equal("PERIOD"))
	g.Expect(got.Status.AppInfo).NotTo(BeNil())
	g.Expect(got.Status.AppInfo.FrontEndURL).To(Equal("https://" + inst.Name + ".apps.example.com/"))
	g.Expect(got.Status.CredentialsSecretRef).To(Equal(&saasv1alpha1.SecretReference{Name: render.CredentialsSecretName, Namespace: ns}))
	// The inventory: every object applied for the tenant, with the hash and generation of the
	// apply (a Deployment's is 1 after its create).
	applied := func(apiVersion, kind, name string) types.GomegaMatcher {
		return And(HaveField("APIVersion", apiVersion), HaveField("Kind", kind), HaveField("Name", name),
			HaveField("AppliedHash", Not(BeEmpty())), HaveField("FrozenReplicas", BeNil()))
	}
	g.Expect(got.Status.Resources).To(ConsistOf(
		And(applied("apps/v1", "Deployment", "web"), HaveField("Generation", BeNumerically(">=", 1))),
		applied("v1", "Service", "web"),
		applied("networking.k8s.io/v1", "Ingress", "web"),
		applied("v1", "Namespace", ns),
		applied("v1", "ResourceQuota", render.QuotaName),
		applied("v1", "LimitRange", render.LimitRangeName),
		applied("v1", "ConfigMap", render.EntitlementConfigMapName),
		applied("networking.k8s.io/v1", "NetworkPolicy", render.DenyIngressPolicyName),
		applied("networking.k8s.io/v1", "NetworkPolicy", render.AllowIngressPolicyName),
		applied("networking.k8s.io/v1", "NetworkPolicy", render.EgressPolicyName),
	))
	g.Expect(got.Finalizers).To(ContainElement(saasv1alpha1.FinalizerRelease))
	for _, c := range []string{saasv1alpha1.ConditionOrderResolved, saasv1alpha1.ConditionProvisioned} {
		expectCondition(g, got, c, metav1.ConditionTrue, "")
	}
	expectCondition(g, got, saasv1alpha1.ConditionFrozen, metav1.ConditionFalse, saasv1alpha1.ReasonActive)

	nsObj := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
	g.Expect(nsObj.Labels).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
	g.Expect(nsObj.Labels).To(HaveKeyWithValue(saasv1alpha1.LabelInstance, inst.Name))
	expectOwned(g, nsObj, got)

	quota := &corev1.ResourceQuota{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.QuotaName}, quota)).To(Succeed())
	g.Expect(quota.Spec.Hard.Pods().String()).To(Equal("10"))
	expectOwned(g, quota, got)
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.LimitRangeName}, &corev1.LimitRange{})).To(Succeed())

	policies := &networkingv1.NetworkPolicyList{}
	g.Expect(k8s.List(ctx, policies, client.InNamespace(ns))).To(Succeed())
	g.Expect(policyNames(policies)).To(ConsistOf(render.DenyIngressPolicyName, render.AllowIngressPolicyName, render.EgressPolicyName))

	secret := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.CredentialsSecretName}, secret)).To(Succeed())
	g.Expect(secret.Data).To(HaveKeyWithValue("userName", []byte("admin")))
	g.Expect(len(secret.Data["password"])).To(BeNumerically(">=", 16))
	expectOwned(g, secret, got)

	d := deployment(g, ns, "web")
	g.Expect(*d.Spec.Replicas).To(Equal(int32(1)))
	g.Expect(d.Labels).To(HaveKeyWithValue(saasv1alpha1.LabelPlan, testenv.BasicPlan))
	expectOwned(g, d, got)

	// The password never leaks into status.
	g.Expect(statusText(got)).NotTo(ContainSubstring(string(secret.Data["password"])))

	// A steady instance causes no more writes: a forced reconcile changes nothing.
	writes := op.writes.Load()
	forceReconcile(t, inst.Name)
	NewWithT(t).Consistently(func() int64 { return op.writes.Load() }).WithTimeout(2 * time.Second).Should(Equal(writes))
}

// The webhook records each call in the status right after creating the instance, so the first
// reconcile often reads a copy older than the stored object. Adding the finalizer must not fail
// on that (a failed reconcile waits in the rate-limited retry queue), nor drop a finalizer
// someone else holds.
func TestFinalizerAddedFromAStaleRead(t *testing.T) {
	ctx := context.Background()
	created := sync.Map{} // name -> resourceVersion at creation, before the history write
	startOperator(t, instance.Options{}, func(c client.Client) client.Client {
		return staleReads{Client: c, versions: &created}
	})
	before := reconcileErrors(t)
	const foreign = "example.com/hold"
	var names []string
	for range 3 {
		inst := order(t, testenv.BasicProduct, testenv.BasicSKU, func(i *saasv1alpha1.MarketplaceInstance) {
			i.Finalizers = []string{foreign}
			i.Annotations = map[string]string{saasv1alpha1.AnnotationPaused: "true"}
		})
		create(t, inst)
		created.Store(inst.Name, inst.ResourceVersion)
		orig := inst.DeepCopy()
		inst.Status.History = []saasv1alpha1.Operation{{Activity: "newInstance", Result: "000000", Time: metav1.Now()}}
		if err := k8s.Status().Patch(ctx, inst, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
		orig = inst.DeepCopy()
		delete(inst.Annotations, saasv1alpha1.AnnotationPaused)
		if err := k8s.Patch(ctx, inst, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
		names = append(names, inst.Name)
	}
	for _, name := range names {
		got := waitReady(t, name)
		NewWithT(t).Expect(got.Finalizers).To(ConsistOf(foreign, saasv1alpha1.FinalizerRelease))
	}
	NewWithT(t).Expect(reconcileErrors(t)-before).To(BeZero(), "reconciles failed")
}

// staleReads answers the first read of each listed instance once it is unpaused with its
// resourceVersion at creation, as a cache that has not yet seen the later writes does.
type staleReads struct {
	client.Client
	versions *sync.Map
}

func (s staleReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := s.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if _, paused := obj.GetAnnotations()[saasv1alpha1.AnnotationPaused]; paused {
		return nil
	}
	if rv, ok := s.versions.LoadAndDelete(key.Name); ok {
		obj.SetResourceVersion(rv.(string))
	}
	return nil
}

func TestUnknownSKUThenPlanAppears(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, "OFFI-UNKNOWN", "sku-nobody-serves")
	create(t, inst)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionOrderResolved, metav1.ConditionFalse, saasv1alpha1.ReasonUnknownSKU)
		expectCondition(g, got, saasv1alpha1.ConditionReady, metav1.ConditionFalse, saasv1alpha1.ReasonUnknownSKU)
		g.Expect(cond(got, saasv1alpha1.ConditionOrderResolved).Message).To(ContainSubstring("sku-nobody-serves"))
		g.Expect(got.Status.Phase).To(Equal("Failed"))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	NewWithT(t).Consistently(func(g Gomega) {
		notFound(g, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: render.NamespaceName(inst.Name)}})
	}).WithTimeout(time.Second).Should(Succeed())

	// A plan that serves the SKU wakes the instance through the plan watch.
	plan := basicPlanCopy(t, "late-plan", saasv1alpha1.SKU{ProductID: "OFFI-UNKNOWN", SKUCode: "sku-nobody-serves"})
	g := NewWithT(t)
	g.Expect(k8s.Create(context.Background(), plan)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), plan) })
	got := waitReady(t, inst.Name)
	g.Expect(got.Status.Plan).To(Equal("late-plan"))
}

func TestQueryOrderFailsThenRecovers(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	koo.FailNext(inst.Spec.Order.OrderID, 3, 500, "MKT.9999")
	create(t, inst)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionOrderResolved, metav1.ConditionFalse, saasv1alpha1.ReasonQueryFailed)
		g.Expect(got.Status.OrderQuery).NotTo(BeNil())
		g.Expect(got.Status.OrderQuery.Failures).To(BeNumerically(">=", 1))
		g.Expect(got.Status.OrderQuery.NextAttemptTime).NotTo(BeNil())
	}).WithTimeout(15 * time.Second).Should(Succeed())
	got := waitReady(t, inst.Name)
	g := NewWithT(t)
	g.Expect(got.Status.OrderQuery).To(BeNil())
	// 3 failures then one success: the persisted backoff kept the calls to exactly that.
	g.Expect(koo.Queries(inst.Spec.Order.OrderID)).To(Equal(4))
}

func TestDebugOrderIsNeverProvisioned(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.Order.TestFlag = true })
	create(t, inst)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionOrderResolved, metav1.ConditionTrue, "")
		expectCondition(g, got, saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonDebugOrder)
		g.Expect(got.Status.Phase).To(Equal("Debug"))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	NewWithT(t).Consistently(func(g Gomega) {
		notFound(g, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: render.NamespaceName(inst.Name)}})
	}).WithTimeout(time.Second).Should(Succeed())
}

func TestUpgradeRollsOutInPlace(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	got := waitReady(t, inst.Name)
	ns := got.Status.Namespace
	secretBefore := credentials(t, ns)

	upgradeTo(t, inst.Name, testenv.ProProduct, testenv.ProSKU)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		g.Expect(got.Status.Plan).To(Equal(testenv.ProPlan))
		expectCondition(g, got, saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonUpgrading)
		g.Expect(got.Status.Phase).To(Equal("Upgrading"))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	got = waitReady(t, inst.Name)

	g := NewWithT(t)
	g.Expect(got.Status.Order.SKUCode).To(Equal(testenv.ProSKU))
	g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(3)))
	quota := &corev1.ResourceQuota{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.QuotaName}, quota)).To(Succeed())
	g.Expect(quota.Spec.Hard.Pods().String()).To(Equal("30"))
	// Same tenant, same credentials: an upgrade never rotates them.
	g.Expect(credentials(t, ns)).To(Equal(secretBefore))
}

func TestDowngradeThatDoesNotFitIsRefused(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.ProProduct, testenv.ProSKU)
	create(t, inst)
	got := waitReady(t, inst.Name)
	ns := got.Status.Namespace
	setQuotaUsed(t, ns, corev1.ResourceList{corev1.ResourcePods: resource.MustParse("20")})

	upgradeTo(t, inst.Name, testenv.BasicProduct, testenv.BasicSKU)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionDegraded, metav1.ConditionTrue, saasv1alpha1.ReasonDowngradeRefused)
		g.Expect(cond(got, saasv1alpha1.ConditionDegraded).Message).To(ContainSubstring("pods: used 20, plan allows 10"))
		g.Expect(got.Status.Plan).To(Equal(testenv.ProPlan))
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(3)))
	}).WithTimeout(15 * time.Second).Should(Succeed())

	// Once usage shrinks the downgrade goes through (the quota watch brings the instance back).
	setQuotaUsed(t, ns, corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")})
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		g.Expect(got.Status.Plan).To(Equal(testenv.BasicPlan))
		expectCondition(g, got, saasv1alpha1.ConditionDegraded, metav1.ConditionFalse, "")
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

func TestFreezeAndExactUnfreeze(t *testing.T) {
	startOperator(t, instance.Options{})
	plan := basicPlanCopy(t, "freeze-plan", saasv1alpha1.SKU{ProductID: "OFFI-FREEZE", SKUCode: "freeze"})
	// A worker whose replicas the plan leaves to others (an HPA), and a CronJob.
	plan.Spec.Manifests = append(plan.Spec.Manifests,
		saasv1alpha1.ManifestTemplate{Name: "worker", Template: workerTemplate},
		saasv1alpha1.ManifestTemplate{Name: "report", Template: cronTemplate})
	g := NewWithT(t)
	g.Expect(k8s.Create(context.Background(), plan)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), plan) })

	inst := order(t, "OFFI-FREEZE", "freeze")
	create(t, inst)
	got := waitReady(t, inst.Name)
	ns := got.Status.Namespace
	// Someone scales the worker to 2 (as an HPA would).
	worker := deployment(g, ns, "worker")
	worker.Spec.Replicas = ptr.To(int32(2))
	g.Expect(k8s.Update(context.Background(), worker)).To(Succeed())

	setState(t, inst.Name, saasv1alpha1.StateFrozen)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonFrozenByOrder)
		expectCondition(g, got, saasv1alpha1.ConditionReady, metav1.ConditionFalse, saasv1alpha1.ReasonFrozenByOrder)
		g.Expect(got.Status.Phase).To(Equal("Frozen"))
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(0)))
		g.Expect(*deployment(g, ns, "worker").Spec.Replicas).To(Equal(int32(0)))
		// The counts to restore are in the inventory, for anyone to read.
		g.Expect(got.Status.Resources).To(ContainElements(
			And(HaveField("Kind", "Deployment"), HaveField("Name", "worker"), HaveField("FrozenReplicas", HaveValue(Equal(int32(2))))),
			And(HaveField("Kind", "Deployment"), HaveField("Name", "web"), HaveField("FrozenReplicas", HaveValue(Equal(int32(1)))))))
		g.Expect(cronJob(g, ns).Spec.Suspend).To(Equal(ptr.To(true)))
		policies := &networkingv1.NetworkPolicyList{}
		g.Expect(k8s.List(context.Background(), policies, client.InNamespace(ns))).To(Succeed())
		g.Expect(policyNames(policies)).To(ConsistOf(render.DenyIngressPolicyName, render.EgressPolicyName))
		// Data stays: the Secret and the namespace are untouched.
		g.Expect(credentials(t, ns)).NotTo(BeEmpty())
	}).WithTimeout(15 * time.Second).Should(Succeed())

	setState(t, inst.Name, saasv1alpha1.StateActive)
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(1)))
		g.Expect(*deployment(g, ns, "worker").Spec.Replicas).To(Equal(int32(2)))
		g.Expect(get(g, inst.Name).Status.Resources).To(HaveEach(HaveField("FrozenReplicas", BeNil())))
		g.Expect(cronJob(g, ns).Spec.Suspend).To(Or(BeNil(), Equal(ptr.To(false))))
		policies := &networkingv1.NetworkPolicyList{}
		g.Expect(k8s.List(context.Background(), policies, client.InNamespace(ns))).To(Succeed())
		g.Expect(policyNames(policies)).To(ConsistOf(render.DenyIngressPolicyName, render.AllowIngressPolicyName, render.EgressPolicyName))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	waitReady(t, inst.Name)
}

func TestSelfFreezeAtExpiry(t *testing.T) {
	startOperator(t, instance.Options{FreezeGrace: 2 * time.Second})
	expire := metav1.NewTime(time.Now().Add(2 * time.Second).Truncate(time.Second))
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.ExpireTime = &expire })
	create(t, inst)
	got := waitReady(t, inst.Name)
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonExpired)
		g.Expect(*deployment(g, got.Status.Namespace, "web").Spec.Replicas).To(Equal(int32(0)))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	// The spec still says Active: the freeze came from expiry alone, with no callback.
	g := NewWithT(t)
	g.Expect(get(g, got.Name).Spec.State).To(Equal(saasv1alpha1.StateActive))

	// A renewal moves expireTime and unfreezes.
	later := metav1.NewTime(time.Now().Add(24 * time.Hour).Truncate(time.Second))
	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.ExpireTime = &later })
	waitReady(t, inst.Name)
}

func TestPauseStopsChanges(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	got := waitReady(t, inst.Name)
	ns := got.Status.Namespace

	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) {
		i.Spec.Paused = true
		i.Spec.State = saasv1alpha1.StateFrozen
	})
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		g.Expect(cond(got, saasv1alpha1.ConditionPaused)).NotTo(BeNil())
		g.Expect(got.Status.Phase).To(Equal("Paused"))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	NewWithT(t).Consistently(func(g Gomega) {
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(1)))
	}).WithTimeout(2 * time.Second).Should(Succeed())

	// The annotation pauses too; removing spec.paused alone keeps it paused.
	annotate(t, inst.Name, saasv1alpha1.AnnotationPaused, "true")
	patchSpec(t, inst.Name, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.Paused = false })
	NewWithT(t).Consistently(func(g Gomega) {
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(1)))
	}).WithTimeout(2 * time.Second).Should(Succeed())

	annotate(t, inst.Name, saasv1alpha1.AnnotationPaused, "false")
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		g.Expect(cond(got, saasv1alpha1.ConditionPaused)).To(BeNil())
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(0)))
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

func TestReleaseWithRetentionAndBackup(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.ProProduct, testenv.ProSKU, func(i *saasv1alpha1.MarketplaceInstance) {
		i.Spec.Release.RetentionPeriod = &metav1.Duration{Duration: 3 * time.Second}
	})
	create(t, inst)
	got := waitReady(t, inst.Name)
	ns := got.Status.Namespace
	g := NewWithT(t)
	g.Expect(k8s.Delete(context.Background(), got)).To(Succeed())

	// Retention: released, frozen, nothing deleted yet, no backup yet.
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonRetaining)
		g.Expect(got.Status.Phase).To(Equal("Releasing"))
		g.Expect(*deployment(g, ns, "web").Spec.Replicas).To(Equal(int32(0)))
		notFound(g, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.BackupJobName}})
	}).WithTimeout(3 * time.Second).Should(Succeed())

	// After retention the backup Job runs; the namespace waits for it.
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonBackingUp)
		job := &batchv1.Job{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.BackupJobName}, job)).To(Succeed())
		expectOwned(g, job, got)
		nsObj := &corev1.Namespace{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
		g.Expect(nsObj.DeletionTimestamp).To(BeNil())
	}).WithTimeout(15 * time.Second).Should(Succeed())

	NewWithT(t).Eventually(func(g Gomega) { completeJob(g, ns) }).WithTimeout(10 * time.Second).Should(Succeed())
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionReleased, metav1.ConditionTrue, saasv1alpha1.ReasonDeleting)
		g.Expect(got.Finalizers).To(ContainElement(saasv1alpha1.FinalizerRelease))
		finalizeNamespace(g, ns)
	}).WithTimeout(15 * time.Second).Should(Succeed())

	// With the namespace gone, the finalizer goes and so does the instance.
	NewWithT(t).Eventually(func(g Gomega) {
		notFound(g, &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: inst.Name}})
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

func TestRestartMidProvisionConverges(t *testing.T) {
	op := startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	var ns string
	NewWithT(t).Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		ns = got.Status.Namespace
		g.Expect(ns).NotTo(BeEmpty())
		expectCondition(g, got, saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonProvisioning)
	}).WithTimeout(15 * time.Second).Should(Succeed())
	password := credentials(t, ns)
	op.stop()

	startOperator(t, instance.Options{})
	got := waitReady(t, inst.Name)
	g := NewWithT(t)
	g.Expect(got.Status.Namespace).To(Equal(ns))
	g.Expect(credentials(t, ns)).To(Equal(password), "credentials regenerated across a restart")
	list := &corev1.NamespaceList{}
	g.Expect(k8s.List(context.Background(), list, client.MatchingLabels{saasv1alpha1.LabelInstance: inst.Name})).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1))
	deps := &appsv1.DeploymentList{}
	g.Expect(k8s.List(context.Background(), deps, client.InNamespace(ns))).To(Succeed())
	g.Expect(deps.Items).To(HaveLen(1))
}

// A restarted manager finds a Ready tenant's children as it left them and writes nothing: its
// cache is filled by an initial list, whose objects client-go transforms twice (see
// managercache.TrimChild), and the applied hashes must survive that.
func TestRestartOverReadyTenantWritesNothing(t *testing.T) {
	op := startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	ns := waitReady(t, inst.Name).Status.Namespace
	op.stop()

	var writes atomic.Int64
	read := &instanceReads{name: inst.Name}
	startOperator(t, instance.Options{}, func(c client.Client) client.Client {
		read.Client = countingClient{Client: c, n: &writes, only: func(name, namespace string) bool {
			return name == inst.Name || name == ns || namespace == ns
		}}
		return read
	})
	g := NewWithT(t)
	g.Eventually(read.seen.Load).WithTimeout(15*time.Second).Should(BeTrue(), "the new manager never read the instance")
	g.Consistently(writes.Load).WithTimeout(3*time.Second).Should(BeZero(), "writes to a Ready tenant after a restart")
	expectCondition(g, get(g, inst.Name), saasv1alpha1.ConditionReady, metav1.ConditionTrue, saasv1alpha1.ReasonAvailable)
}

// instanceReads notes when the reconciler has read one instance.
type instanceReads struct {
	client.Client
	name string
	seen atomic.Bool
}

func (r *instanceReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*saasv1alpha1.MarketplaceInstance); ok && key.Name == r.name {
		r.seen.Store(true)
	}
	return r.Client.Get(ctx, key, obj, opts...)
}

// Status is the reconciler's alone: a status someone else wrote (here by hand: not Ready, on a
// Ready tenant, with nothing else changing) is put right at once, not at the next resync.
func TestOutdatedStatusIsRewritten(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	got := waitReady(t, inst.Name)
	outdated := got.DeepCopy()
	for _, c := range []string{saasv1alpha1.ConditionProvisioned, saasv1alpha1.ConditionReady} {
		meta.SetStatusCondition(&outdated.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionFalse,
			Reason: saasv1alpha1.ReasonProvisioning, Message: "waiting for Deployment web on plan demo-basic", ObservedGeneration: got.Generation})
	}
	if err := k8s.Status().Patch(context.Background(), outdated, client.MergeFrom(got)); err != nil {
		t.Fatal(err)
	}
	NewWithT(t).Eventually(func(g Gomega) {
		expectCondition(g, get(g, inst.Name), saasv1alpha1.ConditionReady, metav1.ConditionTrue, saasv1alpha1.ReasonAvailable)
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

func TestManualReconcileAnnotation(t *testing.T) {
	op := startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	create(t, inst)
	waitReady(t, inst.Name)
	before := reconciles(t)
	forceReconcile(t, inst.Name)
	NewWithT(t).Eventually(func() float64 { return reconciles(t) }).WithTimeout(10 * time.Second).Should(BeNumerically(">", before))
	_ = op
}

const workerTemplate = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: worker
          image: {{ .Values.image }}
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`

const cronTemplate = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
          containers:
            - name: report
              image: {{ .Values.image }}
              securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`

func basicPlanCopy(t *testing.T, name string, sku saasv1alpha1.SKU) *saasv1alpha1.MarketplacePlan {
	t.Helper()
	basic := &saasv1alpha1.MarketplacePlan{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: testenv.BasicPlan}, basic); err != nil {
		t.Fatal(err)
	}
	return &saasv1alpha1.MarketplacePlan{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: func() saasv1alpha1.MarketplacePlanSpec {
			s := *basic.Spec.DeepCopy()
			s.SKUs = []saasv1alpha1.SKU{sku}
			return s
		}(),
	}
}

func expectOwned(g Gomega, obj client.Object, owner *saasv1alpha1.MarketplaceInstance) {
	g.Expect(obj.GetOwnerReferences()).To(Equal([]metav1.OwnerReference{render.OwnerReference(owner)}),
		"%T %s owner references", obj, obj.GetName())
}

func policyNames(l *networkingv1.NetworkPolicyList) []string {
	var names []string
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names
}

func cronJob(g Gomega, ns string) *batchv1.CronJob {
	c := &batchv1.CronJob{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "report"}, c)).To(Succeed())
	return c
}

func credentials(t *testing.T, ns string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.CredentialsSecretName}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data["password"])
}

func statusText(inst *saasv1alpha1.MarketplaceInstance) string {
	var b strings.Builder
	for _, c := range inst.Status.Conditions {
		b.WriteString(c.Message)
	}
	if inst.Status.AppInfo != nil {
		b.WriteString(inst.Status.AppInfo.FrontEndURL + inst.Status.AppInfo.AdminURL)
	}
	return b.String()
}

func patchSpec(t *testing.T, name string, mutate func(*saasv1alpha1.MarketplaceInstance)) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		cur := get(g, name)
		p := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		mutate(cur)
		g.Expect(k8s.Patch(context.Background(), cur, p)).To(Succeed())
	}).WithTimeout(5 * time.Second).Should(Succeed())
}

func setState(t *testing.T, name string, state saasv1alpha1.InstanceState) {
	patchSpec(t, name, func(i *saasv1alpha1.MarketplaceInstance) { i.Spec.State = state })
}

func annotate(t *testing.T, name, key, value string) {
	patchSpec(t, name, func(i *saasv1alpha1.MarketplaceInstance) {
		if i.Annotations == nil {
			i.Annotations = map[string]string{}
		}
		i.Annotations[key] = value
	})
}

func forceReconcile(t *testing.T, name string) {
	annotate(t, name, saasv1alpha1.AnnotationReconcileRequest, time.Now().Format(time.RFC3339Nano))
}

// upgradeTo registers a change order for sku and points the instance at it, as the webhook
// does for upgradeInstance.
func upgradeTo(t *testing.T, name, productID, sku string) {
	t.Helper()
	orderID := "CHG" + time.Now().UTC().Format("150405.000000")
	orderID = strings.ReplaceAll(orderID, ".", "")
	registerOrder(orderID, productID, sku)
	patchSpec(t, name, func(i *saasv1alpha1.MarketplaceInstance) {
		i.Spec.CurrentOrder = &saasv1alpha1.ChangeOrder{OrderID: orderID, OrderLineID: orderID + "-000001"}
	})
}

// setQuotaUsed plays the ResourceQuota controller, which envtest does not run.
func setQuotaUsed(t *testing.T, ns string, used corev1.ResourceList) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		return testenv.SetQuotaUsed(context.Background(), k8s, ns, used)
	}).WithTimeout(5 * time.Second).Should(Succeed())
}

func TestPlanWithClusterScopedOrUnservedKindIsRefused(t *testing.T) {
	startOperator(t, instance.Options{})
	cases := map[string]string{
		// CSINode is cluster-scoped and not on render's list: the RESTMapper check catches it.
		"cluster-scoped": "apiVersion: storage.k8s.io/v1\nkind: CSINode\nmetadata:\n  name: {{ .Name }}\nspec: {drivers: []}\n",
		"unserved":       "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
	}
	for name, tmpl := range cases {
		t.Run(name, func(t *testing.T) {
			sku := saasv1alpha1.SKU{ProductID: "OFFI-BAD-" + name, SKUCode: "bad-" + name}
			plan := basicPlanCopy(t, "bad-"+name, sku)
			plan.Spec.Manifests = append(plan.Spec.Manifests, saasv1alpha1.ManifestTemplate{Name: "extra", Template: tmpl})
			g := NewWithT(t)
			g.Expect(k8s.Create(context.Background(), plan)).To(Succeed())
			t.Cleanup(func() { _ = k8s.Delete(context.Background(), plan) })
			inst := order(t, sku.ProductID, sku.SKUCode)
			create(t, inst)
			NewWithT(t).Eventually(func(g Gomega) {
				got := get(g, inst.Name)
				expectCondition(g, got, saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonRenderFailed)
				g.Expect(cond(got, saasv1alpha1.ConditionProvisioned).Message).To(Or(
					ContainSubstring("cluster-scoped kinds cannot be part of a tenant workload"),
					ContainSubstring("kind not served by the API server")))
				// Nothing of the plan's workload was applied: only the tenant's own objects.
				g.Expect(got.Status.Resources).To(HaveEach(HaveField("Kind", BeElementOf("Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "ConfigMap"))))
			}).WithTimeout(15 * time.Second).Should(Succeed())
		})
	}
}

// The endpoint records each call it applies in the instance's calls annotation, in the write
// that applies it; the reconciler, status's only writer, copies the calls into status.history in
// order, once. Entries status.history could not hold (hand-edited) are skipped, not allowed to
// block every status write, and the reconciler's own status writes never wake it.
func TestCallsCopiedIntoHistory(t *testing.T) {
	startOperator(t, instance.Options{})
	ctx := context.Background()
	g := NewWithT(t)
	const signed = int64(1764200000000)
	created := saasv1alpha1.Operation{Time: metav1.NewTime(time.Unix(1764200000, 0)), Activity: "newInstance", OrderID: "CS1",
		Detail: "created for order line CS1-1", RequestTimestamp: signed, Result: "000004"}
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU, func(i *saasv1alpha1.MarketplaceInstance) {
		v, err := saasv1alpha1.EncodeCalls([]saasv1alpha1.Operation{created})
		g.Expect(err).NotTo(HaveOccurred())
		i.Annotations = map[string]string{saasv1alpha1.AnnotationCalls: v}
	})
	create(t, inst)
	got := waitReady(t, inst.Name)
	g.Expect(got.Status.History).To(HaveLen(1))
	g.Expect(saasv1alpha1.SameCall(got.Status.History[0], created)).To(BeTrue(), "history %+v", got.Status.History)
	g.Expect(got.Status.History[0].Detail).To(Equal(created.Detail))

	// Settled: no pass runs without a change of spec, annotations or children.
	settled := reconciles(t)
	g.Consistently(func() float64 { return reconciles(t) }).WithTimeout(2 * time.Second).Should(Equal(settled))

	freeze := saasv1alpha1.Operation{Time: metav1.NewTime(time.Unix(1764200001, 0)), Activity: "updateInstanceStatus", Detail: "FREEZE",
		RequestTimestamp: signed + 1000, Result: "000000"}
	forged := saasv1alpha1.Operation{Time: metav1.Now(), Activity: "updateInstanceStatus", Detail: strings.Repeat("x", 300), Result: "000000"}
	v, err := saasv1alpha1.EncodeCalls([]saasv1alpha1.Operation{forged, freeze})
	g.Expect(err).NotTo(HaveOccurred())
	orig := got.DeepCopy()
	got.Annotations[saasv1alpha1.AnnotationCalls] = v
	got.Spec.State = saasv1alpha1.StateFrozen
	g.Expect(k8s.Patch(ctx, got, client.MergeFrom(orig))).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := get(g, inst.Name)
		expectCondition(g, cur, saasv1alpha1.ConditionFrozen, metav1.ConditionTrue, saasv1alpha1.ReasonFrozenByOrder)
		h := cur.Status.History
		g.Expect(h).To(HaveLen(2), "history %+v", h)
		g.Expect(saasv1alpha1.SameCall(h[0], created)).To(BeTrue())
		g.Expect(saasv1alpha1.SameCall(h[1], freeze)).To(BeTrue())
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

// A namespace under the tenant's name that the instance does not control is refused, also
// when it carries the instance label (which puts it in the operator's cache): another
// instance's whose hashed long name equals this one's. Only the manager can label a namespace
// so (config/admission), which is why the manager creates it here.
func TestNamespaceNotControlledIsRefused(t *testing.T) {
	startOperator(t, instance.Options{})
	inst := order(t, testenv.BasicProduct, testenv.BasicSKU)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: render.NamespaceName(inst.Name),
		Labels: map[string]string{saasv1alpha1.LabelInstance: inst.Name}}}
	g := NewWithT(t)
	ctx := context.Background()
	asManager, err := client.New(env.ManagerConfig, client.Options{Scheme: env.Scheme})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(asManager.Create(ctx, ns)).To(Succeed())
	t.Cleanup(func() {
		_ = k8s.Delete(ctx, ns)
		finalizeNamespace(NewWithT(t), ns.Name)
	})
	create(t, inst)
	g.Eventually(func(g Gomega) {
		got := get(g, inst.Name)
		expectCondition(g, got, saasv1alpha1.ConditionProvisioned, metav1.ConditionFalse, saasv1alpha1.ReasonConflict)
		g.Expect(cond(got, saasv1alpha1.ConditionProvisioned).Message).To(ContainSubstring("is not managed by this instance"))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ns), ns)).To(Succeed())
	g.Expect(ns.OwnerReferences).To(BeEmpty(), "the namespace was taken over")

	// Releasing the instance leaves the namespace alone.
	g.Expect(k8s.Delete(ctx, inst)).To(Succeed())
	g.Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKeyFromObject(inst), &saasv1alpha1.MarketplaceInstance{})
	}).WithTimeout(15 * time.Second).Should(MatchError(ContainSubstring("not found")))
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ns), ns)).To(Succeed())
	g.Expect(ns.DeletionTimestamp).To(BeNil(), "the namespace was deleted")
}
