//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// The pay-per-use sample plan (RunningTime) and its SKU.
const (
	onDemandPlanFile = "saas_v1alpha1_marketplaceplan_ondemand.yaml"
	onDemandProduct  = "OFFI000000000000005"
	onDemandSKU      = "demo-ondemand-hourly"
	usagePeriod      = 3 * time.Second
)

// meteredTenant is one pay-per-use instance of the usage scenario and what the test saw of it.
type meteredTenant struct {
	name, instanceID string
	start, released  time.Time
}

// usageCount is the verdict over every tenant's periods.
type usageCount struct {
	expected, pushed, resent, duplicated, missing int
}

func (c usageCount) String() string {
	return fmt.Sprintf("periods expected %d, pushed %d, duplicated %d, missing %d (re-sent and de-duplicated by metering_sn: %d)",
		c.expected, c.pushed, c.duplicated, c.missing, c.resent)
}

// TestUsageUnderSIGKILL: pay-per-use tenants billed per hour of service accrue usage on a 3 s
// schedule, then are released, while the manager is SIGKILLed at random moments and restarted.
// KooGallery (the simulator, de-duplicating on metering_sn) must have received every period of
// every tenant from its first Ready to its release exactly once: none missing, none billed twice
// (another record over the same time, or one metering_sn with two contents). CHAOS_USAGE_TENANTS
// sets the number of tenants (200).
func TestUsageUnderSIGKILL(t *testing.T) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("CHAOS_USAGE_TENANTS")); err == nil && v > 0 {
		n = v
	}
	ctx, row := startScenario(t, "usage push under SIGKILL", 9*time.Minute)
	row.instances = n
	g := NewWithT(t)
	// The buyers' side acts for 200 tenants at once: more than the admin client's default rate.
	cfg, err := cluster.RESTConfig("admin")
	g.Expect(err).NotTo(HaveOccurred())
	cfg.QPS, cfg.Burst = 200, 400
	fast, err := client.New(cfg, client.Options{Scheme: admin.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	// KooGallery's usage API knows the seller's basic-interface key, which signs the pushes.
	kooUsage := simulator.NewOpenAPIServer(openAPIAK, openAPISK, simulator.WithUsageKey([]byte(basicKey)))
	hs := httptest.NewServer(kooUsage)
	defer hs.Close()
	plan, err := testenv.SamplePlan(onDemandPlanFile)
	g.Expect(err).NotTo(HaveOccurred())
	if err := admin.Create(ctx, plan); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	op, err := rig.StartOperator(ctx, rig.OperatorConfig{
		Binary: manager, Kubeconfig: cluster.Kubeconfig("operator"), KeysDir: keysDir, OpenAPIURL: hs.URL,
		Args: []string{"--usage-push-interval", usagePeriod.String()}, LogFile: filepath.Join(logDir, "usage.log"),
	})
	g.Expect(err).NotTo(HaveOccurred())
	running.Lock()
	running.ops = append(running.ops, op)
	running.Unlock()
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			t.Logf("manager log (last lines):\n%s", op.Tail(40))
		}
	})

	stop := make(chan struct{})
	chaosDone := make(chan kills, 1)
	go func() {
		k, err := killAtRandom(ctx, t, op, rand.New(rand.NewPCG(seed, 7)), stop) //nolint:gosec // replayable delays
		if err != nil {
			t.Errorf("chaos: %v", err)
		}
		chaosDone <- k
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()

	tenants := make([]*meteredTenant, n)
	start := time.Now()
	errs := eachOf(n, 16, func(i int) error {
		tn, err := buyOnDemand(ctx, fast, kooUsage, i)
		tenants[i] = tn
		return err
	})
	noErrors(t, "creating instances", errs)
	waitMetered(t, ctx, tenants)
	t.Logf("%d tenants metered after %s", n, round(time.Since(start)))
	// Several periods accrue, under kills, before the release.
	g.Expect(pause(ctx, 5*usagePeriod)).To(Succeed())
	noErrors(t, "releasing", eachOf(n, 16, func(i int) error { return releaseTenant(ctx, fast, tenants[i]) }))
	waitGone(t, ctx, tenants)
	close(stop)
	k := <-chaosDone
	row.disruption = fmt.Sprintf("%d/%d", k.count, len(k.ready))

	c := countUsage(t, kooUsage, tenants)
	row.recovery = c.String()
	t.Logf("%s; %s", row.recovery, rig.Counts(kooUsage.UsageStats().Refused))
	g.Expect(c.missing).To(BeZero(), c.String())
	g.Expect(c.duplicated).To(BeZero(), c.String())
	g.Expect(k.count).To(BeNumerically(">", 0), "the manager was never killed")
}

// buyOnDemand creates the i-th pay-per-use instance, its order known to Query Order and its
// instance ID to the usage API.
func buyOnDemand(ctx context.Context, c client.Client, koo *simulator.OpenAPIServer, i int) (*meteredTenant, error) {
	orderID := fmt.Sprintf("USAGE%04d", i)
	now := time.Now().UTC()
	koo.RegisterOrder(openapi.Order{OrderID: orderID, OrderType: openapi.OrderTypeNew, CreateTime: now,
		Lines: []openapi.OrderLine{{OrderLineID: orderID + "-000001", ChargingMode: openapi.ChargingOnDemand,
			Products: []openapi.Product{{ProductID: onDemandProduct, SKUCode: onDemandSKU, ProductName: "chaos"}}}}})
	tn := &meteredTenant{name: fmt.Sprintf("usage-%04d", i), instanceID: fmt.Sprintf("usage-%04d-%d", i, now.UnixNano())}
	koo.RegisterInstance(tn.instanceID, now.Add(-time.Second))
	inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: tn.name},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{InstanceID: tn.instanceID, State: saasv1alpha1.StateActive,
			Order: saasv1alpha1.OrderReference{OrderID: orderID, OrderLineID: orderID + "-000001"}}}
	return tn, c.Create(ctx, inst)
}

// usageTenants lists the scenario's instances, by name, in one request.
func usageTenants(ctx context.Context, g Gomega) map[string]*saasv1alpha1.MarketplaceInstance {
	list := &saasv1alpha1.MarketplaceInstanceList{}
	g.Expect(admin.List(ctx, list)).To(Succeed())
	out := map[string]*saasv1alpha1.MarketplaceInstance{}
	for i := range list.Items {
		if strings.HasPrefix(list.Items[i].Name, "usage-") {
			out[list.Items[i].Name] = &list.Items[i]
		}
	}
	return out
}

// waitMetered waits until every tenant is Ready and metered, and keeps when metering began.
func waitMetered(t *testing.T, ctx context.Context, tenants []*meteredTenant) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		live, waiting := usageTenants(ctx, g), 0
		for _, tn := range tenants {
			inst := live[tn.name]
			if inst == nil || inst.Status.Usage == nil || !meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionReady) {
				waiting++
				continue
			}
			tn.start = inst.Status.Usage.StartTime.UTC()
		}
		g.Expect(waiting).To(BeZero(), "tenants not metered yet")
	}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
}

// releaseTenant deletes the tenant's instance, as releaseInstance does, and keeps when it was
// released.
func releaseTenant(ctx context.Context, c client.Client, tn *meteredTenant) error {
	inst := &saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: tn.name}}
	if err := c.Delete(ctx, inst); err != nil {
		return err
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(inst), inst); err != nil {
		return err
	}
	tn.released = inst.DeletionTimestamp.UTC()
	return nil
}

// waitGone waits until every released instance is gone: its last period pushed.
func waitGone(t *testing.T, ctx context.Context, tenants []*meteredTenant) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(usageTenants(ctx, g)).To(BeEmpty(), "released instances still there")
	}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
}

// countUsage compares what KooGallery received with the periods each tenant ran: from the start
// of metering to the release, on the schedule.
func countUsage(t *testing.T, koo *simulator.OpenAPIServer, tenants []*meteredTenant) usageCount {
	t.Helper()
	var c usageCount
	var problems []string
	for _, tn := range tenants {
		iu := koo.InstanceUsage(tn.instanceID)
		got := map[[2]time.Time]int{}
		for _, r := range iu.Records {
			got[[2]time.Time{r.BeginTime.UTC(), r.EndTime.UTC()}]++
		}
		c.pushed += len(iu.Records)
		c.resent += iu.Duplicates
		c.duplicated += iu.Overlaps + iu.Conflicts
		for from := tn.start; from.Before(tn.released); {
			end := from.Truncate(usagePeriod).Add(usagePeriod)
			if end.After(tn.released) {
				end = tn.released
			}
			c.expected++
			switch got[[2]time.Time{from, end}] {
			case 0:
				c.missing++
				problems = append(problems, fmt.Sprintf("%s: period %s-%s missing", tn.name, from.Format(time.TimeOnly), end.Format(time.TimeOnly)))
			case 1:
			default:
				c.duplicated++
			}
			delete(got, [2]time.Time{from, end})
			from = end
		}
		for p := range got {
			c.duplicated++
			problems = append(problems, fmt.Sprintf("%s: unexpected period %s-%s", tn.name, p[0].Format(time.TimeOnly), p[1].Format(time.TimeOnly)))
		}
	}
	if len(problems) > 0 {
		t.Logf("usage problems:\n%s", firstLines(problems, 20))
	}
	return c
}
