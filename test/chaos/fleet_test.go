//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// tenant is one buyer's instance and what KooGallery's last accepted call asked of it. The
// suite compares the cluster with it at the end of each scenario.
type tenant struct {
	mu sync.Mutex
	// orderID is the purchase; upgradeOrderID the order an upgrade moves it to.
	orderID, upgradeOrderID string
	instanceID              string
	upgraded                bool
	expire                  time.Time // zero until renewed
	frozen, released        bool
}

func newTenant(orderID string) *tenant {
	registerOrder(orderID, testenv.BasicProduct, testenv.BasicSKU)
	upgrade := orderID + "UP"
	registerOrder(upgrade, testenv.ProProduct, testenv.ProSKU)
	return &tenant{orderID: orderID, upgradeOrderID: upgrade}
}

func (tn *tenant) lineID() string { return tn.orderID + "-000001" }

func (tn *tenant) name() string { return webhook.InstanceName(tn.lineID()) }

func (tn *tenant) id() string {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.instanceID
}

func (tn *tenant) update(f func(*tenant)) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	f(tn)
}

// create sends newInstance as KooGallery does (retried, then polled until ready). With dup, a
// second create for the same order line goes out at the same time with another businessId, as
// KooGallery's resends do: both must be answered with one and the same instance.
func (tn *tenant) create(ctx context.Context, sim *simulator.Simulator, out *outcomes, dup bool) error {
	send := func(business string) (*simulator.CreateResult, error) {
		res, err := sim.NewInstance(ctx, koogallery.NewInstanceRequest{OrderID: tn.orderID, OrderLineID: tn.lineID(), BusinessID: business})
		if err != nil {
			return nil, fmt.Errorf("newInstance %s: %w", tn.orderID, err)
		}
		out.add(res.CreateCode)
		out.add(res.Final.ResultCode)
		return res, nil
	}
	if !dup {
		res, err := send(strings.ToLower(tn.orderID) + "-b1")
		if err != nil {
			return err
		}
		tn.update(func(tn *tenant) { tn.instanceID = res.InstanceID })
		return nil
	}
	var wg sync.WaitGroup
	results, errs := make([]*simulator.CreateResult, 2), make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], errs[i] = send(fmt.Sprintf("%s-b%d", strings.ToLower(tn.orderID), i+1)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if results[0].InstanceID != results[1].InstanceID {
		return fmt.Errorf("newInstance %s: a resend got instance %s, the first %s", tn.orderID, results[1].InstanceID, results[0].InstanceID)
	}
	tn.update(func(tn *tenant) { tn.instanceID = results[0].InstanceID })
	return nil
}

func (tn *tenant) renew(ctx context.Context, sim *simulator.Simulator, out *outcomes, to time.Time) error {
	to = to.UTC().Truncate(time.Second)
	resp, err := sim.RefreshInstance(ctx, koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal,
		OrderID: tn.orderID + "RN", OrderLineID: tn.orderID + "RN-000001", InstanceID: tn.id(), ExpireTime: koogallery.FormatExpireTime(to)})
	if err := expectAccepted(out, "renew "+tn.orderID, resp, err); err != nil {
		return err
	}
	tn.update(func(tn *tenant) { tn.expire = to })
	return nil
}

func (tn *tenant) setFrozen(ctx context.Context, sim *simulator.Simulator, out *outcomes, frozen bool) error {
	status := koogallery.StatusUnfreeze
	if frozen {
		status = koogallery.StatusFreeze
	}
	resp, err := sim.UpdateInstanceStatus(ctx, koogallery.UpdateInstanceStatusRequest{InstanceID: tn.id(), Status: status})
	if err := expectAccepted(out, strings.ToLower(status)+" "+tn.orderID, resp, err); err != nil {
		return err
	}
	tn.update(func(tn *tenant) { tn.frozen = frozen })
	return nil
}

func (tn *tenant) upgrade(ctx context.Context, sim *simulator.Simulator, out *outcomes) error {
	resp, err := sim.UpgradeInstance(ctx, koogallery.UpgradeInstanceRequest{InstanceID: tn.id(),
		OrderID: tn.upgradeOrderID, OrderLineID: tn.upgradeOrderID + "-000001"})
	if err := expectAccepted(out, "upgrade "+tn.orderID, resp, err); err != nil {
		return err
	}
	tn.update(func(tn *tenant) { tn.upgraded = true })
	return nil
}

// release sends releaseInstance, and once more: a repeated release must be answered 000000 too.
func (tn *tenant) release(ctx context.Context, sim *simulator.Simulator, out *outcomes) error {
	for i := range 2 {
		resp, err := sim.ReleaseInstance(ctx, koogallery.ReleaseInstanceRequest{InstanceID: tn.id()})
		if err := expectAccepted(out, fmt.Sprintf("release %s (%d)", tn.orderID, i+1), resp, err); err != nil {
			return err
		}
		tn.update(func(tn *tenant) { tn.released = true })
	}
	return nil
}

// want is what the cluster must show for the tenant.
func (tn *tenant) want() (plan, order string, replicas int32) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	plan, order, replicas = testenv.BasicPlan, tn.orderID, basicReplicas
	if tn.upgraded {
		plan, order, replicas = testenv.ProPlan, tn.upgradeOrderID, proReplicas
	}
	if tn.frozen {
		replicas = 0
	}
	return plan, order, replicas
}

// fleetProblems compares the cluster with what KooGallery last asked of the tenants, whose
// instance names all start with prefix. It lists every difference (none: converged):
//   - exactly one MarketplaceInstance per order line and per instance ID (cluster-wide), its
//     instance ID the one KooGallery was answered;
//   - released tenants gone with their namespace (instances carry no retention period, so the
//     namespace goes at once);
//   - every other tenant in the state, plan, order and expiry asked for, its status caught up
//     with its spec, Ready when active, its web Deployment at the plan's replicas (0 frozen)
//     with exactly that many ready Pods;
//   - no other namespace of the prefix or of its instances: one namespace per live tenant.
func fleetProblems(ctx context.Context, prefix string, tenants []*tenant) ([]string, error) {
	insts := &saasv1alpha1.MarketplaceInstanceList{}
	if err := admin.List(ctx, insts); err != nil {
		return nil, err
	}
	var problems []string
	byName := map[string]*saasv1alpha1.MarketplaceInstance{}
	lines, ids := map[string]int{}, map[string]int{}
	for i := range insts.Items {
		inst := &insts.Items[i]
		lines[inst.Spec.Order.OrderLineID]++
		ids[inst.Spec.InstanceID]++
		if strings.HasPrefix(inst.Name, prefix) {
			byName[inst.Name] = inst
		}
	}
	for line, n := range lines {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("order line %s has %d instances", line, n))
		}
	}
	for id, n := range ids {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("instance ID %s is used by %d instances", id, n))
		}
	}
	deploys := &appsv1.DeploymentList{}
	if err := admin.List(ctx, deploys, client.HasLabels{saasv1alpha1.LabelInstance}); err != nil {
		return nil, err
	}
	web := map[string]*appsv1.Deployment{}
	for i := range deploys.Items {
		if d := &deploys.Items[i]; d.Name == "web" {
			web[d.Namespace] = d
		}
	}
	// The namespace each live tenant must have, and whose it must be.
	liveNS := map[string]string{}
	for _, tn := range tenants {
		inst := byName[tn.name()]
		delete(byName, tn.name())
		tn.mu.Lock()
		released := tn.released
		tn.mu.Unlock()
		if released {
			if inst != nil {
				problems = append(problems, fmt.Sprintf("%s: released, but the instance is still there (%s)", tn.name(), inst.Status.Phase))
			}
			continue
		}
		liveNS[render.NamespaceName(tn.name())] = tn.name()
		problems = append(problems, tenantProblems(tn, inst, web[render.NamespaceName(tn.name())])...)
	}
	for name := range byName {
		problems = append(problems, fmt.Sprintf("%s: an instance no buyer asked for", name))
	}
	nss := &corev1.NamespaceList{}
	if err := admin.List(ctx, nss); err != nil {
		return nil, err
	}
	for _, ns := range nss.Items {
		owner := ns.Labels[saasv1alpha1.LabelInstance]
		if !strings.HasPrefix(ns.Name, render.NamespacePrefix+prefix) && !strings.HasPrefix(owner, prefix) {
			continue
		}
		if want, ok := liveNS[ns.Name]; !ok || owner != want {
			problems = append(problems, fmt.Sprintf("namespace %s (of instance %q, %s) belongs to no live tenant", ns.Name, owner, ns.Status.Phase))
		}
	}
	return problems, nil
}

func tenantProblems(tn *tenant, inst *saasv1alpha1.MarketplaceInstance, d *appsv1.Deployment) []string {
	if inst == nil {
		return []string{tn.name() + ": no instance"}
	}
	plan, order, replicas := tn.want()
	tn.mu.Lock()
	id, expire, frozen := tn.instanceID, tn.expire, tn.frozen
	tn.mu.Unlock()
	var p []string
	bad := func(format string, args ...any) { p = append(p, tn.name()+": "+fmt.Sprintf(format, args...)) }
	wantState := saasv1alpha1.StateActive
	if frozen {
		wantState = saasv1alpha1.StateFrozen
	}
	switch {
	case inst.Spec.InstanceID != id:
		bad("instanceId %s, KooGallery was answered %s", inst.Spec.InstanceID, id)
	case inst.Spec.State != wantState:
		bad("state %s, want %s", inst.Spec.State, wantState)
	case !expire.IsZero() && (inst.Spec.ExpireTime == nil || !inst.Spec.ExpireTime.Time.Equal(expire)):
		bad("expireTime %v, want %s", inst.Spec.ExpireTime, expire.Format(time.RFC3339))
	case inst.Status.ObservedGeneration != inst.Generation:
		bad("status is of generation %d, spec is %d", inst.Status.ObservedGeneration, inst.Generation)
	case inst.Status.Plan != plan || inst.Status.Order == nil || inst.Status.Order.OrderID != order:
		bad("plan %q, want %s (order %s)", inst.Status.Plan, plan, order)
	case frozen && !meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionFrozen):
		bad("not Frozen (phase %s)", inst.Status.Phase)
	case !frozen && !meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionReady):
		bad("not Ready (phase %s)", inst.Status.Phase)
	case d == nil:
		bad("no web Deployment")
	case ptr.Deref(d.Spec.Replicas, 1) != replicas || d.Status.Replicas != replicas || d.Status.ReadyReplicas != replicas:
		bad("web Deployment wants %d, has %d (%d ready), want %d", ptr.Deref(d.Spec.Replicas, 1), d.Status.Replicas, d.Status.ReadyReplicas, replicas)
	}
	return p
}

// firstLines keeps a problem list readable in a failure message.
func firstLines(problems []string, n int) string {
	if len(problems) <= n {
		return strings.Join(problems, "\n")
	}
	return strings.Join(problems[:n], "\n") + fmt.Sprintf("\n… and %d more", len(problems)-n)
}

// expectConverged waits until the cluster shows what KooGallery last asked of every tenant, and
// returns how long that took.
func expectConverged(t *testing.T, ctx context.Context, prefix string, tenants []*tenant, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	NewWithT(t).Eventually(func(g Gomega) {
		problems, err := fleetProblems(ctx, prefix, tenants)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(len(problems)).To(BeZero(), "%d difference(s) from what KooGallery asked:\n%s", len(problems), firstLines(problems, 15))
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(2 * time.Second).Should(Succeed())
	return time.Since(start)
}
