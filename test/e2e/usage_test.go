//go:build e2e

package e2e

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// The pay-per-use sample plans and their SKUs.
const (
	onDemandProduct, onDemandSKU = "OFFI000000000000005", "demo-ondemand-hourly"
	meteredProduct, meteredSKU   = "OFFI000000000000006", "demo-ondemand-requests"
	usagePeriod                  = 3 * time.Second
)

// TestPayPerUse installs with kustomize and sells two pay-per-use tenants through KooGallery's
// calls: one billed per hour of service, which runs, is frozen for a whole period, unfrozen and
// released; one billed on its application's reports, made with kubectl as the tenant's
// ServiceAccount. KooGallery received each period once, signed with the seller key, and
// queryInstance answers the usage.
func TestPayPerUse(t *testing.T) {
	keysDir := devKeys(t)
	kubectl(t, "create", "namespace", installNamespace)
	kubectl(t, "-n", installNamespace, "create", "secret", "generic", "marketplace-operator-keys",
		"--from-file="+filepath.Join(keysDir, "basic"), "--from-file="+filepath.Join(keysDir, "kit"),
		"--from-file="+filepath.Join(keysDir, "ak"), "--from-file="+filepath.Join(keysDir, "sk"))
	kubectl(t, "apply", "--server-side", "-k", "config/default")
	if err := rig.WaitEstablished(ctx(t), admin, "marketplaceinstances.saas.marketplace.dev", "marketplaceplans.saas.marketplace.dev"); err != nil {
		t.Fatal(err)
	}
	kubectl(t, "apply", "--server-side", "-f", "config/samples/saas_v1alpha1_marketplaceplan_ondemand.yaml",
		"-f", "config/samples/saas_v1alpha1_marketplaceplan_metered.yaml")
	t.Cleanup(func() {
		kubectl(t, "delete", "mpi", "--all", "--wait=true", "--timeout=120s")
		kubectl(t, "delete", "-k", "config/default", "--wait=true", "--timeout=120s")
	})

	// KooGallery's usage API checks pushes against the seller key bound to the basic interfaces.
	koo := simulator.NewOpenAPIServer(testAK, testSK, simulator.WithUsageKey([]byte(testBasicKey)))
	hs := httptest.NewServer(koo)
	t.Cleanup(hs.Close)
	op, err := rig.StartOperator(ctx(t), rig.OperatorConfig{
		Binary: filepath.Join(binDir, "manager"), Kubeconfig: impersonating(t, installNamespace, kustomizeServiceAccount),
		KeysDir: keysDir, OpenAPIURL: hs.URL, LeaseNamespace: installNamespace,
		Args: []string{"--usage-push-interval", usagePeriod.String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			t.Logf("operator log:\n%s", op.Tail(60))
		}
	})
	sim, err := simulator.New(simulator.Config{ProductionURL: op.MarketplaceURL + "/saasproduce", BasicKey: []byte(testBasicKey),
		PollInterval: 200 * time.Millisecond, PollTimeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("per hour of service", func(t *testing.T) { payPerHour(t, koo, sim) })
	t.Run("per reported request", func(t *testing.T) { payPerReport(t, koo, sim) })
	if refused := koo.UsageStats().Refused; len(refused) > 0 {
		t.Fatalf("KooGallery refused usage pushes: %v", refused)
	}
}

// buy creates a pay-per-use instance through newInstance and waits until its tenant runs.
func buy(t *testing.T, koo *simulator.OpenAPIServer, sim *simulator.Simulator, orderID, product, sku string) (string, *saasv1alpha1.MarketplaceInstance) {
	t.Helper()
	koo.RegisterOrder(openapi.Order{OrderID: orderID, OrderType: openapi.OrderTypeNew, CreateTime: time.Now().UTC(),
		Lines: []openapi.OrderLine{{OrderLineID: orderID + "-000001", ChargingMode: openapi.ChargingOnDemand,
			Products: []openapi.Product{{ProductID: product, SKUCode: sku, ProductName: "demo"}}}}})
	start := time.Now().Truncate(time.Second)
	created, err := sim.NewInstance(ctx(t), koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: orderID + "-000001",
		BusinessID: orderID + "-business"})
	if err != nil {
		t.Fatal(err)
	}
	koo.RegisterInstance(created.InstanceID, start)
	inst := instanceByID(NewWithT(t), created.InstanceID)
	expectReadyPods(t, render.NamespaceName(inst.Name), 1)
	return created.InstanceID, inst
}

func mpi(g Gomega, name string) *saasv1alpha1.MarketplaceInstance {
	inst := &saasv1alpha1.MarketplaceInstance{}
	g.Expect(admin.Get(context.Background(), client.ObjectKey{Name: name}, inst)).To(Succeed())
	return inst
}

// readyChange waits until the instance's Ready condition is ready, and returns when it became so.
func readyChange(t *testing.T, name string, ready bool) time.Time {
	t.Helper()
	var at time.Time
	NewWithT(t).Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(mpi(g, name).Status.Conditions, saasv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status == "True").To(Equal(ready))
		at = c.LastTransitionTime.UTC()
	}).WithTimeout(90 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	return at
}

// pushedTo waits until the instance's usage is acknowledged up to at least at.
func pushedTo(t *testing.T, name string, at time.Time) *saasv1alpha1.UsageStatus {
	t.Helper()
	var u *saasv1alpha1.UsageStatus
	NewWithT(t).Eventually(func(g Gomega) {
		u = mpi(g, name).Status.Usage
		g.Expect(u).NotTo(BeNil())
		g.Expect(u.PushedUntil.Time).NotTo(BeTemporally("<", at))
	}).WithTimeout(90 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	return u
}

// releaseThrough releases the instance through releaseInstance, and waits until it is gone
// (its last period pushed); it returns the release time.
func releaseThrough(t *testing.T, sim *simulator.Simulator, id, name string) time.Time {
	t.Helper()
	g := NewWithT(t)
	expectSuccess(g)(sim.ReleaseInstance(ctx(t), koogallery.ReleaseInstanceRequest{InstanceID: id}))
	var released time.Time
	g.Eventually(func(g Gomega) {
		inst := &saasv1alpha1.MarketplaceInstance{}
		err := admin.Get(context.Background(), client.ObjectKey{Name: name}, inst)
		if err == nil && inst.DeletionTimestamp != nil {
			released = inst.DeletionTimestamp.UTC()
		}
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "instance %s: %v", name, err)
	}).WithTimeout(120 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	g.Expect(released.IsZero()).To(BeFalse(), "the release was not seen")
	return released
}

func hourUnits(seconds int64) int64 { return (seconds*25 + 4) / 9 }

// wantHours are the records of a tenant that ran during spans (pairs of times), one per period
// with running time, each from the previous period's end.
func wantHours(id string, spans [][2]time.Time, start, until time.Time) []openapi.UsageRecord {
	ran := func(t time.Time) int64 {
		var s int64
		for _, sp := range spans {
			to := sp[1]
			if to.After(t) {
				to = t
			}
			if to.After(sp[0]) {
				s += int64(to.Sub(sp[0]) / time.Second)
			}
		}
		return s
	}
	var out []openapi.UsageRecord
	for from := start; from.Before(until); {
		end := from.Truncate(usagePeriod).Add(usagePeriod)
		if end.After(until) {
			end = until
		}
		if v := hourUnits(ran(end)) - hourUnits(ran(from)); v > 0 {
			out = append(out, openapi.UsageRecord{InstanceID: id, BeginTime: from, EndTime: end, UsageValue: float64(v) / 1e4,
				MeteringSN: openapi.MeteringSN(id, end)})
		}
		from = end
	}
	return out
}

func receivedBy(koo *simulator.OpenAPIServer, id string) []openapi.UsageRecord {
	recs := koo.InstanceUsage(id).Records
	sort.Slice(recs, func(i, j int) bool { return recs[i].BeginTime.Before(recs[j].BeginTime) })
	for i := range recs {
		recs[i].RecordTime, recs[i].BeginTime, recs[i].EndTime = time.Time{}, recs[i].BeginTime.UTC(), recs[i].EndTime.UTC()
	}
	return recs
}

func payPerHour(t *testing.T, koo *simulator.OpenAPIServer, sim *simulator.Simulator) {
	g := NewWithT(t)
	id, inst := buy(t, koo, sim, "PPUHOUR0001", onDemandProduct, onDemandSKU)
	t0 := readyChange(t, inst.Name, true)
	pushedTo(t, inst.Name, t0.Add(2*usagePeriod))

	reply, err := sim.QueryInstance(ctx(t), koogallery.TestFlagProduction, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reply.Info).To(HaveLen(1))
	g.Expect(reply.Info[0].UsageInfo).To(HaveLen(1))
	usage := reply.Info[0].UsageInfo[0]
	g.Expect(usage.UsageValue).To(BeNumerically(">", 0))
	g.Expect(usage.StatisticalTime).To(MatchRegexp(`^[0-9]{17}$`))
	g.Expect(usage.DashboardURL).To(Equal("https://usage.apps.example.com/"))

	expectSuccess(g)(sim.UpdateInstanceStatus(ctx(t), koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze}))
	t1 := readyChange(t, inst.Name, false)
	frozenPeriodEnd := t1.Truncate(usagePeriod).Add(2 * usagePeriod)
	pushedTo(t, inst.Name, frozenPeriodEnd)
	expectSuccess(g)(sim.UpdateInstanceStatus(ctx(t), koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusUnfreeze}))
	t2 := readyChange(t, inst.Name, true)
	pushedTo(t, inst.Name, t2.Add(usagePeriod))
	t3 := releaseThrough(t, sim, id, inst.Name)

	g.Expect(receivedBy(koo, id)).To(Equal(wantHours(id, [][2]time.Time{{t0, t1}, {t2, t3}}, t0, t3)))
	iu := koo.InstanceUsage(id)
	g.Expect(iu.Duplicates+iu.Conflicts+iu.Overlaps).To(BeZero(), "%+v", iu)
	t.Logf("per hour: %d records, %.4f hours, frozen %s-%s", len(iu.Records), iu.Total, t1.Format(time.TimeOnly), t2.Format(time.TimeOnly))
}

func payPerReport(t *testing.T, koo *simulator.OpenAPIServer, sim *simulator.Simulator) {
	g := NewWithT(t)
	id, inst := buy(t, koo, sim, "PPUREQS0001", meteredProduct, meteredSKU)
	ns := render.NamespaceName(inst.Name)
	as := "--as=system:serviceaccount:" + ns + ":default"
	// The application's side of the contract, as the README shows it.
	g.Eventually(func() error {
		return exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kubeconfig, as, "-n", ns, "patch", "configmap",
			saasv1alpha1.UsageConfigMap, "--type", "merge", "-p", `{"data":{"value":"1250"}}`).Run()
	}).WithTimeout(60 * time.Second).Should(Succeed())
	if out, err := exec.Command(filepath.Join(assets, "kubectl"), "--kubeconfig", kubeconfig, as, "-n", ns, "get", "secrets").CombinedOutput(); err == nil {
		t.Fatalf("the tenant's ServiceAccount can read its Secrets: %s", out)
	}
	g.Eventually(func(g Gomega) { g.Expect(mpi(g, inst.Name).Status.Usage.PushedValue).To(Equal("1250")) }).
		WithTimeout(60 * time.Second).Should(Succeed())
	kubectl(t, as, "-n", ns, "patch", "configmap", saasv1alpha1.UsageConfigMap, "--type", "merge", "-p", `{"data":{"value":"1300.5"}}`)
	releaseThrough(t, sim, id, inst.Name)

	iu := koo.InstanceUsage(id)
	g.Expect(iu.Total).To(BeNumerically("~", 1300.5, 1e-9))
	g.Expect(iu.Duplicates+iu.Conflicts+iu.Overlaps).To(BeZero(), "%+v", iu)
	t.Logf("per request: %d records, %.4f requests", len(iu.Records), iu.Total)
}
