//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
)

const (
	installNamespace = "marketplace-operator-system"
	// kustomizeServiceAccount is the ServiceAccount config/default creates for the manager.
	kustomizeServiceAccount = "marketplace-operator-controller-manager"
	helmRelease             = "mpo"
	// helmServiceAccount is the chart's ServiceAccount for release helmRelease.
	helmServiceAccount = "mpo-marketplace-operator"
	testBasicKey       = "e2e-basic-key-0123456789"
	testAK, testSK     = "e2e-ak", "e2e-sk"
)

func devKeys(t *testing.T) string {
	return keys(t, map[string]string{"basic": testBasicKey, "kit": "e2e-kit-key-0123456789", "ak": testAK, "sk": testSK})
}

// TestInstallWithKustomize installs config/default, runs the operator as its ServiceAccount,
// drives a lifecycle and uninstalls.
func TestInstallWithKustomize(t *testing.T) {
	start := time.Now()
	// The README's install steps, as written there.
	keysDir := devKeys(t)
	kubectl(t, "create", "namespace", installNamespace)
	kubectl(t, "-n", installNamespace, "create", "secret", "generic", "marketplace-operator-keys",
		"--from-file="+filepath.Join(keysDir, "basic"), "--from-file="+filepath.Join(keysDir, "kit"),
		"--from-file="+filepath.Join(keysDir, "ak"), "--from-file="+filepath.Join(keysDir, "sk"))
	kubectl(t, "apply", "--server-side", "-k", "config/default")
	kubectl(t, "-n", installNamespace, "rollout", "status", "deployment/marketplace-operator-controller-manager", "--timeout=120s")
	if err := rig.WaitEstablished(ctx(t), admin, "marketplaceinstances.saas.marketplace.dev", "marketplaceplans.saas.marketplace.dev"); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "--server-side", "-f", "config/samples/saas_v1alpha1_marketplaceplan_basic.yaml",
		"-f", "config/samples/saas_v1alpha1_marketplaceplan_pro.yaml")
	expectLeastPrivilege(t, kustomizeServiceAccount)

	koo, apiURL := openAPI(t, testAK, testSK)
	op := startOperator(t, impersonating(t, installNamespace, kustomizeServiceAccount), keysDir, apiURL, installNamespace)
	lifecycle(t, koo, op, "KUST")
	operate(t, koo, op)

	// Uninstall as the README says: instances first (their finalizers release the tenants,
	// which needs the operator), then the operator.
	kubectl(t, "delete", "mpi", "--all", "--wait=true", "--timeout=120s")
	op.Stop()
	kubectl(t, "delete", "-k", "config/default", "--wait=true", "--timeout=120s")
	expectNothingLeft(t)
	t.Logf("kustomize install, lifecycle and uninstall took %s", time.Since(start).Round(100*time.Millisecond))
}

// operate runs the README's "Operating instances with kubectl" commands as written there.
func operate(t *testing.T, koo *simulator.OpenAPIServer, op *rig.Operator) {
	t.Helper()
	g := NewWithT(t)
	registerOrder(koo, "OPSORDER0001", testenv.BasicProduct, testenv.BasicSKU)
	sim, err := simulator.New(simulator.Config{ProductionURL: op.MarketplaceURL + "/saasproduce", BasicKey: []byte(testBasicKey),
		PollInterval: 200 * time.Millisecond, PollTimeout: 90 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	created, err := sim.NewInstance(ctx(t), koogallery.NewInstanceRequest{OrderID: "OPSORDER0001", OrderLineID: "OPSORDER0001-000001",
		BusinessID: "ops-business-0001"})
	g.Expect(err).NotTo(HaveOccurred())
	name := instanceByID(g, created.InstanceID).Name
	ns := render.NamespaceName(name)
	expectReadyPods(t, ns, 1)

	g.Expect(kubectl(t, "get", "mpi")).To(And(ContainSubstring(name), ContainSubstring("Ready")))
	g.Expect(kubectl(t, "get", "mpi", "-o", "wide")).To(ContainSubstring(ns))
	g.Expect(kubectl(t, "describe", "mpi", name)).To(ContainSubstring("Conditions"))
	expectTenantLabelsGuarded(t, ns)

	kubectl(t, "patch", "mpi", name, "--type", "merge", "-p", `{"spec":{"state":"Frozen"}}`)
	expectReadyPods(t, ns, 0)
	kubectl(t, "patch", "mpi", name, "--type", "merge", "-p", `{"spec":{"state":"Active"}}`)
	expectReadyPods(t, ns, 1)

	kubectl(t, "patch", "mpi", name, "--type", "merge", "-p", `{"spec":{"paused":true}}`)
	kubectl(t, "annotate", "mpi", name, "saas.marketplace.dev/paused=true")
	kubectl(t, "patch", "mpi", name, "--type", "merge", "-p", `{"spec":{"state":"Frozen"}}`)
	kubectl(t, "annotate", "mpi", name, "saas.marketplace.dev/reconcile-request="+time.Now().Format("20060102150405"), "--overwrite")
	g.Consistently(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(Equal(int32(1)), "a paused instance must not change")
	}).WithTimeout(3 * time.Second).Should(Succeed())
	kubectl(t, "patch", "mpi", name, "--type", "merge", "-p", `{"spec":{"paused":false}}`)
	kubectl(t, "annotate", "mpi", name, "saas.marketplace.dev/paused-")
	expectReadyPods(t, ns, 0)

	kubectl(t, "delete", "mpi", name)
	g.Eventually(func(g Gomega) {
		err := admin.Get(context.Background(), client.ObjectKey{Name: ns}, &corev1.Namespace{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace %s: %v", ns, err)
	}).WithTimeout(120 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// TestInstallWithHelm does the same with the Helm chart.
func TestInstallWithHelm(t *testing.T) {
	start := time.Now()
	helm(t, "install", helmRelease, "charts/marketplace-operator", "--namespace", installNamespace, "--create-namespace",
		"--set", "keys.create=true", "--set", "keys.basic="+testBasicKey, "--set", "keys.kit=e2e-kit-key-0123456789",
		"--set", "keys.ak="+testAK, "--set", "keys.sk="+testSK, "--wait", "--timeout", "120s")
	kubectl(t, "apply", "--server-side", "-f", "config/samples/saas_v1alpha1_marketplaceplan_basic.yaml",
		"-f", "config/samples/saas_v1alpha1_marketplaceplan_pro.yaml")
	expectLeastPrivilege(t, helmServiceAccount)

	koo, apiURL := openAPI(t, testAK, testSK)
	op := startOperator(t, impersonating(t, installNamespace, helmServiceAccount), devKeys(t), apiURL, installNamespace)
	lifecycle(t, koo, op, "HELM")

	kubectl(t, "delete", "mpi", "--all", "--wait=true", "--timeout=120s")
	kubectl(t, "delete", "mpp", "--all", "--wait=true")
	op.Stop()
	helm(t, "uninstall", helmRelease, "--namespace", installNamespace, "--wait", "--timeout", "120s")
	// Helm never deletes the CRDs it installed from crds/: that is the documented last step.
	kubectl(t, "delete", "crd", "marketplaceinstances.saas.marketplace.dev", "marketplaceplans.saas.marketplace.dev", "--wait=true")
	kubectl(t, "delete", "namespace", installNamespace, "--wait=true", "--timeout=120s")
	expectNothingLeft(t)
	t.Logf("helm install, lifecycle and uninstall took %s", time.Since(start).Round(100*time.Millisecond))
}

// expectLeastPrivilege checks things the operator's ServiceAccount must not be able to do.
func expectLeastPrivilege(t *testing.T, sa string) {
	t.Helper()
	as := "--as=system:serviceaccount:" + installNamespace + ":" + sa
	for _, denied := range [][]string{
		{"create", "clusterrolebindings"},
		{"delete", "nodes"},
		{"update", "customresourcedefinitions"},
		{"impersonate", "users"},
		{"create", "pods", "-n", "kube-system"},
	} {
		cmd := exec.Command(filepath.Join(assets, "kubectl"), append([]string{"--kubeconfig", kubeconfig, "auth", "can-i", as}, denied...)...)
		out, _ := cmd.Output() // stdout only: kubectl warns on stderr about cluster-scoped kinds
		if strings.TrimSpace(string(out)) != "no" {
			t.Errorf("%s can %v: %s", sa, denied, out)
		}
	}
}

// expectTenantLabelsGuarded checks the shipped admission policies on the full cluster: nobody but
// the operator relabels a tenant namespace's Pod Security level (cluster-admin included), and the
// operator's ServiceAccount writes nowhere but in tenant namespaces and its own.
func expectTenantLabelsGuarded(t *testing.T, ns string) {
	t.Helper()
	kc := filepath.Join(assets, "kubectl")
	out, err := exec.Command(kc, "--kubeconfig", kubeconfig, "label", "namespace", ns, //nolint:gosec // the control plane's kubectl
		"pod-security.kubernetes.io/enforce=privileged", "--overwrite").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "are the operator's to set") {
		t.Errorf("cluster-admin relabelled tenant namespace %s: %v: %s", ns, err, out)
	}
	as := "--as=system:serviceaccount:" + installNamespace + ":" + kustomizeServiceAccount
	out, err = exec.Command(kc, "--kubeconfig", kubeconfig, as, "-n", "kube-system", "create", "secret", "generic", //nolint:gosec // as above
		"planted", "--from-literal=k=v").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "may only write in tenant namespaces") {
		t.Errorf("the manager's ServiceAccount wrote a Secret in kube-system: %v: %s", err, out)
	}
}

// lifecycle drives create → renew → freeze → unfreeze → upgrade → release through signed
// callbacks, checking the real cluster after each step: Pods really become Ready (kwok),
// freeze removes them, unfreeze brings them back, release removes the namespace (the real
// garbage collector and namespace controller run here).
func lifecycle(t *testing.T, koo *simulator.OpenAPIServer, op *rig.Operator, prefix string) {
	t.Helper()
	g := NewWithT(t)
	c := ctx(t)
	orderID, upgradeID := prefix+"ORDER0001", prefix+"CHANGE0001"
	registerOrder(koo, orderID, testenv.BasicProduct, testenv.BasicSKU)
	registerOrder(koo, upgradeID, testenv.ProProduct, testenv.ProSKU)
	sim, err := simulator.New(simulator.Config{ProductionURL: op.MarketplaceURL + "/saasproduce", BasicKey: []byte(testBasicKey),
		KitKey: []byte("e2e-kit-key-0123456789"), PollInterval: 200 * time.Millisecond, PollTimeout: 90 * time.Second,
		RetrySchedule: []time.Duration{time.Second, 2 * time.Second}})
	g.Expect(err).NotTo(HaveOccurred())

	created, err := sim.NewInstance(c, koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: orderID + "-000001",
		BusinessID: strings.ToLower(prefix) + "-business-0001"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(created.Final.ResultCode).To(Equal(koogallery.ResultSuccess))
	g.Expect(created.Info.AppInfo).NotTo(BeNil())
	g.Expect(created.Info.AppInfo.FrontEndURL).To(HavePrefix("https://"))
	g.Expect(created.Info.AppInfo.Password).NotTo(BeEmpty())
	id := created.InstanceID
	inst := instanceByID(g, id)
	ns := render.NamespaceName(inst.Name)
	expectReadyPods(t, ns, 1)

	renewTo := time.Now().UTC().AddDate(1, 0, 0)
	expectSuccess(g)(sim.RefreshInstance(c, koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: prefix + "RENEW0001",
		OrderLineID: prefix + "RENEW0001-000001", InstanceID: id, ExpireTime: koogallery.FormatExpireTime(renewTo)}))
	g.Eventually(func(g Gomega) {
		got := instanceByID(g, id)
		g.Expect(got.Spec.ExpireTime).NotTo(BeNil())
		g.Expect(got.Spec.ExpireTime.Time.Sub(renewTo).Abs()).To(BeNumerically("<", time.Second))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	expectSuccess(g)(sim.UpdateInstanceStatus(c, koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}))
	expectReadyPods(t, ns, 0)
	expectSuccess(g)(sim.UpdateInstanceStatus(c, koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusUnfreeze}))
	expectReadyPods(t, ns, 1)

	expectSuccess(g)(sim.UpgradeInstance(c, koogallery.UpgradeInstanceRequest{InstanceID: id, OrderID: upgradeID, OrderLineID: upgradeID + "-000001"}))
	expectReadyPods(t, ns, 3)
	g.Eventually(func(g Gomega) {
		got := instanceByID(g, id)
		g.Expect(got.Status.Plan).To(Equal(testenv.ProPlan))
		g.Expect(got.Status.Phase).To(Equal("Ready"))
	}).WithTimeout(60 * time.Second).Should(Succeed())

	expectSuccess(g)(sim.ReleaseInstance(c, koogallery.ReleaseInstanceRequest{InstanceID: id}))
	g.Eventually(func(g Gomega) {
		err := admin.Get(context.Background(), client.ObjectKey{Name: ns}, &corev1.Namespace{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "namespace %s: %v", ns, err)
		err = admin.Get(context.Background(), client.ObjectKey{Name: inst.Name}, &saasv1alpha1.MarketplaceInstance{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "instance %s: %v", inst.Name, err)
	}).WithTimeout(120 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	// A repeated release is answered success, as the spec demands.
	expectSuccess(g)(sim.ReleaseInstance(c, koogallery.ReleaseInstanceRequest{InstanceID: id}))
}

func registerOrder(koo *simulator.OpenAPIServer, orderID, productID, sku string) {
	koo.RegisterOrder(openapi.Order{
		OrderID: orderID, OrderType: "NEW", CreateTime: time.Now().UTC(),
		Lines: []openapi.OrderLine{{
			OrderLineID: orderID + "-000001", ChargingMode: "PERIOD", PeriodType: "year", PeriodNum: 1,
			ExpireTime: time.Now().UTC().AddDate(1, 0, 0),
			Products:   []openapi.Product{{ProductID: productID, SKUCode: sku, ProductName: "demo"}},
		}},
	})
}

// expectSuccess takes a simulator call's results: expectSuccess(g)(sim.X(...)).
func expectSuccess(g Gomega) func(*simulator.Response, error) {
	return func(resp *simulator.Response, err error) {
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.Reply.ResultCode).To(Equal(koogallery.ResultSuccess), "reply %s", resp.Body)
	}
}

func instanceByID(g Gomega, id string) *saasv1alpha1.MarketplaceInstance {
	list := &saasv1alpha1.MarketplaceInstanceList{}
	g.Expect(admin.List(context.Background(), list)).To(Succeed())
	for i := range list.Items {
		if list.Items[i].Spec.InstanceID == id {
			return &list.Items[i]
		}
	}
	g.Expect(fmt.Errorf("no instance with instanceId %s", id)).NotTo(HaveOccurred())
	return nil
}

// expectReadyPods waits until the tenant's web Deployment has exactly n Pods, all Ready.
func expectReadyPods(t *testing.T, ns string, n int) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(admin.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(Equal(int32(n)))
		pods := &corev1.PodList{}
		g.Expect(admin.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels{"app": "web"})).To(Succeed())
		live := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			live++
			ready := false
			for _, c := range p.Status.Conditions {
				ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
			}
			g.Expect(ready).To(BeTrue(), "pod %s not Ready", p.Name)
		}
		g.Expect(live).To(Equal(n))
	}).WithTimeout(90 * time.Second).WithPolling(300 * time.Millisecond).Should(Succeed())
}

// expectNothingLeft: no CRDs, no operator namespace, no tenant namespaces, no cluster RBAC of ours.
func expectNothingLeft(t *testing.T) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		crds := &apiextensionsv1.CustomResourceDefinitionList{}
		g.Expect(admin.List(context.Background(), crds)).To(Succeed())
		for _, c := range crds.Items {
			g.Expect(c.Spec.Group).NotTo(Equal(saasv1alpha1.GroupVersion.Group), "CRD %s left", c.Name)
		}
		nss := &corev1.NamespaceList{}
		g.Expect(admin.List(context.Background(), nss)).To(Succeed())
		for _, n := range nss.Items {
			g.Expect(n.Name).NotTo(Equal(installNamespace))
			g.Expect(n.Name).NotTo(HavePrefix(render.NamespacePrefix), "tenant namespace %s left", n.Name)
		}
		out := kubectl(t, "get", "clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings", "-o", "name")
		g.Expect(out).NotTo(ContainSubstring("marketplace-operator"))
	}).WithTimeout(120 * time.Second).WithPolling(time.Second).Should(Succeed())
}

// TestDevLoop runs `make dev`'s script the way a newcomer does, drives `koosim lifecycle`
// against it as the script tells, and checks that stopping it leaves nothing running.
func TestDevLoop(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	cmd := exec.Command(filepath.Join(root, "hack", "dev.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DEV_DIR="+dir, "DEV_PORT=28090",
		"ETCD_PORT=53379", "API_PORT=56643", "KCM_PORT=53257", "SCHED_PORT=53259")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !signalled && sc.Text() == "dev: ready" {
				signalled = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("make dev exited before ready: %v\n%s", err, log.String())
	case <-time.After(5 * time.Minute):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make dev not ready within 5 min:\n%s", log.String())
	}
	t.Logf("make dev ready in %s", time.Since(start).Round(100*time.Millisecond))

	lc := exec.Command(filepath.Join(root, "bin", "koosim"), "lifecycle", "--url", "http://127.0.0.1:28090/saasproduce",
		"--key-file", filepath.Join(dir, "keys", "basic"), "--order-id", "DEVBASIC0001", "--renew-order-id", "DEVRENEW0001",
		"--upgrade-order-id", "DEVPRO0001", "--poll-interval", "200ms", "--retry-schedule", "1s,2s,4s")
	out, err := lc.CombinedOutput()
	if err != nil {
		t.Errorf("koosim lifecycle against make dev: %v\n%s", err, out)
	} else {
		t.Logf("koosim lifecycle:\n%s", out)
	}

	// Ctrl-C reaches the whole foreground process group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make dev did not stop within 60s after Ctrl-C:\n%s", log.String())
	}
	if ps, _ := exec.Command("pgrep", "-f", dir).Output(); len(strings.TrimSpace(string(ps))) > 0 {
		t.Errorf("processes left running after Ctrl-C: %s", ps)
	}
	if t.Failed() {
		t.Logf("make dev output:\n%s", log.String())
	}
}
