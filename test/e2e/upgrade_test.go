//go:build e2e

package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// previousChart is the last commit whose chart shipped its CRDs in crds/, which Helm installs
// once and never upgrades. Its CRDs predate spec.metering, so the upgrade must change them.
const previousChart = "8d4d9867617815e440e19e61f9bd61565091a86d"

const upgradeInstances = 3

// TestHelmUpgrade installs the chart as of previousChart, provisions instances, upgrades to the
// chart in the tree the way the README says, and checks that the CRDs are now the current ones,
// owned by the release and kept on uninstall, that no instance or tenant object was written by
// the upgrade or the restarted manager, and that the endpoint answers as `helm test` expects.
//
// The manager runs out of the cluster (kwok's pods never run), as the current binary both
// before and after: what changes is the chart, which is what this test is about.
func TestHelmUpgrade(t *testing.T) {
	start := time.Now()
	g := NewWithT(t)
	old := filepath.Join(t.TempDir(), "previous")
	extractChart(t, previousChart, old)
	keySets := []string{"--set", "keys.create=true", "--set", "keys.basic=" + testBasicKey, "--set", "keys.kit=e2e-kit-key-0123456789",
		"--set", "keys.ak=" + testAK, "--set", "keys.sk=" + testSK}
	helm(t, append([]string{"install", helmRelease, old, "--namespace", installNamespace, "--create-namespace", "--wait", "--timeout", "120s"}, keySets...)...)
	crdNames := []string{"marketplaceinstances.saas.marketplace.dev", "marketplaceplans.saas.marketplace.dev"}
	if err := rig.WaitEstablished(ctx(t), admin, crdNames...); err != nil {
		t.Fatal(err)
	}
	for _, name := range crdNames {
		g.Expect(crdSchemaIsCurrent(t, name)).To(BeFalse(), "the previous chart's CRD %s is already the current one: pin a chart whose CRDs are older", name)
	}
	kubectl(t, "apply", "--server-side", "-f", "config/samples/saas_v1alpha1_marketplaceplan_basic.yaml")

	koo, apiURL := openAPI(t, testAK, testSK)
	keysDir := devKeys(t)
	op, err := rig.StartOperator(ctx(t), rig.OperatorConfig{
		Binary: filepath.Join(binDir, "manager"), Kubeconfig: impersonating(t, installNamespace, helmServiceAccount), KeysDir: keysDir,
		OpenAPIURL: apiURL, LeaseNamespace: installNamespace, Metrics: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			t.Logf("operator log:\n%s", op.Tail(60))
		}
	})
	sim, err := simulator.New(simulator.Config{ProductionURL: op.MarketplaceURL + "/saasproduce", BasicKey: []byte(testBasicKey),
		PollInterval: 200 * time.Millisecond, PollTimeout: 90 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for i := range upgradeInstances {
		order := fmt.Sprintf("UPGRADE%05d", i)
		registerOrder(koo, order, testenv.BasicProduct, testenv.BasicSKU)
		created, err := sim.NewInstance(ctx(t), koogallery.NewInstanceRequest{OrderID: order, OrderLineID: order + "-000001",
			BusinessID: fmt.Sprintf("upgrade-business-%04d", i)})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(created.Final.ResultCode).To(Equal(koogallery.ResultSuccess))
		name := instanceByID(g, created.InstanceID).Name
		expectReadyPods(t, render.NamespaceName(name), 1)
		names = append(names, name)
	}
	before := snapshot(t, names)
	manager := &appsv1.Deployment{}
	g.Expect(admin.Get(context.Background(), client.ObjectKey{Namespace: installNamespace, Name: helmServiceAccount}, manager)).To(Succeed())

	// The manager's pods go away during the rollout; the new ones start after the upgrade.
	op.Stop()
	// --reuse-values keeps the previous chart's defaults and drops the new ones: the schema
	// refuses it, naming what is missing, before anything is changed.
	reuse := exec.Command(filepath.Join(assets, "helm"), "--kubeconfig", kubeconfig, "upgrade", helmRelease, "charts/marketplace-operator", //nolint:gosec // the control plane's helm
		"--namespace", installNamespace, "--reuse-values")
	reuse.Dir = root
	out, err := reuse.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing propert") || !strings.Contains(string(out), "crds") {
		t.Errorf("helm upgrade --reuse-values: %v, want a schema error naming crds:\n%s", err, out)
	}
	// The README's upgrade: the chart's new defaults, the release's own values, and ownership of
	// the CRDs the previous chart left unlabelled in crds/.
	helm(t, "upgrade", helmRelease, "charts/marketplace-operator", "--namespace", installNamespace,
		"--reset-then-reuse-values", "--take-ownership", "--wait", "--timeout", "120s")

	for _, name := range crdNames {
		g.Expect(crdSchemaIsCurrent(t, name)).To(BeTrue(), "CRD %s was not upgraded", name)
		crd := &apiextensionsv1.CustomResourceDefinition{}
		g.Expect(admin.Get(context.Background(), client.ObjectKey{Name: name}, crd)).To(Succeed())
		g.Expect(crd.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
		g.Expect(crd.Annotations).To(HaveKeyWithValue("meta.helm.sh/release-name", helmRelease))
		g.Expect(crd.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
	}
	after := &appsv1.Deployment{}
	g.Expect(admin.Get(context.Background(), client.ObjectKey{Namespace: installNamespace, Name: helmServiceAccount}, after)).To(Succeed())
	g.Expect(after.Generation).To(Equal(manager.Generation), "the upgrade rolled the manager's pods for nothing: its pod template changed")

	reconciles := func(g Gomega) float64 {
		m, err := op.Metrics(context.Background())
		g.Expect(err).NotTo(HaveOccurred())
		return rig.Sum(m, "controller_runtime_reconcile_total", `controller="marketplaceinstance"`)
	}
	g.Expect(op.Start(ctx(t))).To(Succeed())
	// The restarted manager has looked at every instance (its first reconciles are of the
	// instances its cache listed) before the objects are compared.
	g.Eventually(func(g Gomega) {
		g.Expect(reconciles(g)).To(BeNumerically(">=", upgradeInstances))
		m, err := op.Metrics(context.Background())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(rig.Sum(m, "workqueue_depth", `name="marketplaceinstance"`)).To(BeZero())
	}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	for _, name := range names {
		inst := &saasv1alpha1.MarketplaceInstance{}
		g.Expect(admin.Get(context.Background(), client.ObjectKey{Name: name}, inst)).To(Succeed())
		g.Expect(inst.Status.Phase).To(Equal("Ready"), "instance %s", name)
		ready := metav1.Condition{}
		for _, c := range inst.Status.Conditions {
			if c.Type == "Ready" {
				ready = c
			}
		}
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "instance %s Ready condition", name)
		g.Expect(ready.ObservedGeneration).To(Equal(inst.Generation), "instance %s", name)
	}
	g.Expect(snapshot(t, names)).To(Equal(before), "the upgrade or the restarted manager rewrote instances or tenant objects")

	expectEndpointRefusesUnsigned(t, op.MarketplaceURL+"/saasproduce")

	kubectl(t, "delete", "mpi", "--all", "--wait=true", "--timeout=120s")
	kubectl(t, "delete", "mpp", "--all", "--wait=true")
	op.Stop()
	uninstall := helm(t, "uninstall", helmRelease, "--namespace", installNamespace, "--wait", "--timeout", "120s")
	for _, name := range crdNames {
		g.Expect(admin.Get(context.Background(), client.ObjectKey{Name: name}, &apiextensionsv1.CustomResourceDefinition{})).
			To(Succeed(), "helm uninstall deleted CRD %s despite the keep policy: %s", name, uninstall)
	}
	kubectl(t, "delete", "crd", crdNames[0], crdNames[1], "--wait=true")
	kubectl(t, "delete", "namespace", installNamespace, "--wait=true", "--timeout=120s")
	expectNothingLeft(t)
	t.Logf("helm install of %s, %d instances, upgrade and uninstall took %s", previousChart[:7], upgradeInstances,
		time.Since(start).Round(100*time.Millisecond))
}

// extractChart writes the chart as of commit into dir.
func extractChart(t *testing.T, commit, dir string) {
	t.Helper()
	archive := exec.Command("git", "archive", "--format=tar", commit, "charts/marketplace-operator")
	archive.Dir = root
	tarball, err := archive.Output()
	if err != nil {
		t.Fatalf("git archive %s: %v (the test needs the repository's history: git fetch --unshallow)", commit, err)
	}
	tmp := t.TempDir()
	untar := exec.Command("tar", "-x", "-C", tmp)
	untar.Stdin = strings.NewReader(string(tarball))
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "charts", "marketplace-operator"), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "crds")); err != nil {
		t.Fatalf("the chart of %s has no crds/ folder: it is not the previous shape (%v)", commit, err)
	}
}

// crdSchemaIsCurrent says whether the cluster's CRD serves config/crd/bases's schemas.
func crdSchemaIsCurrent(t *testing.T, name string) bool {
	t.Helper()
	plural, _, _ := strings.Cut(name, ".")
	raw, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", "saas.marketplace.dev_"+plural+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(raw, want); err != nil {
		t.Fatal(err)
	}
	got := &apiextensionsv1.CustomResourceDefinition{}
	if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Versions) != len(want.Spec.Versions) {
		return false
	}
	for i := range want.Spec.Versions {
		if !reflect.DeepEqual(got.Spec.Versions[i].Schema, want.Spec.Versions[i].Schema) ||
			!reflect.DeepEqual(got.Spec.Versions[i].AdditionalPrinterColumns, want.Spec.Versions[i].AdditionalPrinterColumns) {
			return false
		}
	}
	return true
}

// snapshot maps each instance, and every object in its status inventory, to its resourceVersion.
func snapshot(t *testing.T, names []string) map[string]string {
	t.Helper()
	versions := map[string]string{}
	for _, name := range names {
		inst := &saasv1alpha1.MarketplaceInstance{}
		if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, inst); err != nil {
			t.Fatal(err)
		}
		versions["MarketplaceInstance/"+name] = inst.ResourceVersion
		if len(inst.Status.Resources) == 0 {
			t.Fatalf("instance %s has no inventory in status.resources", name)
		}
		ns := render.NamespaceName(name)
		for _, ref := range inst.Status.Resources {
			obj := &unstructured.Unstructured{}
			obj.SetGroupVersionKind(schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind))
			key := client.ObjectKey{Namespace: ns, Name: ref.Name}
			if ref.Kind == "Namespace" {
				key.Namespace = ""
			}
			if err := admin.Get(context.Background(), key, obj); err != nil {
				t.Fatalf("%s %s of instance %s: %v", ref.Kind, key, name, err)
			}
			versions[ref.Kind+"/"+key.String()] = obj.GetResourceVersion()
		}
	}
	return versions
}

// expectEndpointRefusesUnsigned makes the request of the chart's `helm test` pod
// (files/test-endpoint.py), which cannot run on kwok's nodes: an unsigned basic call must be
// answered 000001 with a Body-Sign made with the basic key of the chart's Secret.
func expectEndpointRefusesUnsigned(t *testing.T, url string) {
	t.Helper()
	g := NewWithT(t)
	secret := &corev1.Secret{}
	g.Expect(admin.Get(context.Background(), client.ObjectKey{Namespace: installNamespace, Name: helmServiceAccount + "-keys"}, secret)).To(Succeed())
	key := []byte(strings.TrimRight(string(secret.Data["basic"]), "\r\n"))
	g.Expect(key).NotTo(BeEmpty(), "the chart's keys Secret has no basic key")

	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, url, strings.NewReader(`{"activity": "newInstance", "instanceId": "helm-test"}`))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var reply koogallery.Reply
	g.Expect(json.Unmarshal(body, &reply)).To(Succeed())
	g.Expect(reply.ResultCode).To(Equal(koogallery.ResultAuthFailed), "reply %s", body)
	// Checked as KooGallery does, independently of koogallery.VerifyBodySign.
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	want := `sign_type="HMAC-SHA256", signature="` + base64.StdEncoding.EncodeToString(mac.Sum(nil)) + `"`
	g.Expect(resp.Header.Values("Body-Sign")).To(Equal([]string{want}), "Body-Sign of the refusal")
}
