//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

const (
	leaseNamespace = "marketplace-operator-system"
	// leaseName is the manager's LeaderElectionID.
	leaseName = "marketplace-operator.saas.marketplace.dev"
)

// Phases of the leader-election scenario, as the balancer labels the calls.
const (
	phaseBefore = "before the kill"
	phaseGap    = "leader dead"
	phaseAfter  = "after the restart"
)

// TestLeaderElectionTwoReplicas: two replicas behind a Service, with leader election as
// installed. Callbacks go to both; the leader is SIGKILLed mid-run (it cannot release its
// Lease), while instances are still provisioning. The survivor keeps answering, takes the Lease
// once it expires and finishes every pending instance; nobody reconciles while no one holds the
// Lease; the killed replica, restarted, answers again as a follower.
func TestLeaderElectionTwoReplicas(t *testing.T) {
	const prefix = "lead"
	ctx, row := startScenario(t, "leader killed, 2 replicas", 6*time.Minute)
	g := NewWithT(t)
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	names := []string{"replica-a", "replica-b"}
	ops := []*rig.Operator{startOperator(t, ctx, names[0], leaseNamespace), startOperator(t, ctx, names[1], leaseNamespace)}
	lb := newBalancer(t, names, ops)
	sim := newSimulator(t, lb.URL())
	out := &outcomes{}
	row.sims, row.out = []*simulator.Simulator{sim}, out
	batch := func(n int, label string) []*tenant {
		ts := make([]*tenant, n)
		for i := range ts {
			ts[i] = newTenant(fmt.Sprintf("LEAD%s%03d", label, i))
		}
		return ts
	}
	first, mid, late := batch(16, "A"), batch(16, "B"), batch(8, "C")
	all := append(append(append([]*tenant{}, first...), mid...), late...)
	row.instances = len(all)

	leader := awaitLeader(t, ctx, ops)
	holder := lease(g, ctx).Spec.HolderIdentity
	t.Logf("%s leads (Lease holder %s)", names[leader], *holder)
	survivor := 1 - leader

	lb.setPhase(phaseBefore)
	noErrors(t, "first batch", eachOf(len(first), 8, func(i int) error {
		tn := first[i]
		if err := tn.create(ctx, sim, out, false); err != nil {
			return err
		}
		return tn.renew(ctx, sim, out, time.Now().AddDate(1, 0, i))
	}))

	// Mid-run: the second batch is created and provisioning when the leader dies.
	midDone := make(chan []error, 1)
	go func() {
		midDone <- eachOf(len(mid), len(mid), func(i int) error { return mid[i].create(ctx, sim, out, false) })
	}()
	pendingAtKill := awaitCreated(t, ctx, mid)
	lb.rotate(names[leader], false)
	lb.setPhase(phaseGap)
	killedAt := time.Now()
	ops[leader].Kill()
	t.Logf("SIGKILLed the leader %s with %d of %d new instances not Ready yet", names[leader], pendingAtKill, len(mid))

	// Without a leader the survivor still answers: new buyers, and freezes of running tenants.
	lateDone := make(chan []error, 1)
	go func() {
		lateDone <- eachOf(len(late), len(late), func(i int) error { return late[i].create(ctx, sim, out, false) })
	}()
	noErrors(t, "freezes while no replica leads", eachOf(8, 8, func(i int) error { return first[i].setFrozen(ctx, sim, out, true) }))

	var acquired time.Time
	g.Eventually(func(g Gomega) {
		l := lease(g, ctx)
		g.Expect(l.Spec.HolderIdentity).NotTo(BeNil())
		g.Expect(*l.Spec.HolderIdentity).NotTo(BeElementOf("", *holder), "the dead leader still holds the Lease")
		g.Expect(l.Spec.AcquireTime).NotTo(BeNil())
		acquired = l.Spec.AcquireTime.Time
	}).WithContext(ctx).WithTimeout(90 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	g.Eventually(func() bool { return isLeader(ctx, ops[survivor]) }).WithContext(ctx).WithTimeout(30*time.Second).
		Should(BeTrue(), "the Lease changed hands, but the survivor does not lead")
	takeover := acquired.Sub(killedAt)
	t.Logf("%s took the Lease %s after the SIGKILL", names[survivor], round(takeover))

	noErrors(t, "instances created before the kill", <-midDone)
	noErrors(t, "instances created while no replica led", <-lateDone)
	pendingReady := time.Since(killedAt)
	expectUntouchedBefore(g, ctx, late, acquired)

	g.Expect(ops[leader].Start(ctx)).To(Succeed())
	row.disruption = "1/1"
	lb.rotate(names[leader], true)
	lb.setPhase(phaseAfter)
	noErrors(t, "calls after the restart", eachOf(16, 8, func(i int) error {
		switch {
		case i < 4:
			return first[i].setFrozen(ctx, sim, out, false)
		case i < 8:
			return first[4+i].upgrade(ctx, sim, out)
		case i < 12:
			return mid[i-8].release(ctx, sim, out)
		default:
			return late[i-12].renew(ctx, sim, out, time.Now().AddDate(2, 0, i))
		}
	}))

	for _, phase := range []string{phaseBefore, phaseAfter} {
		for i, name := range names {
			g.Expect(lb.answered(name, phase)).To(BeNumerically(">", 0), "%s answered nothing %s", names[i], phase)
		}
	}
	g.Expect(lb.answered(names[survivor], phaseGap)).To(BeNumerically(">", 0), "the survivor answered nothing while no replica led")
	t.Logf("calls answered: %s", answeredTable(lb, names))
	expectRetryable(g, sim)

	converged := expectConverged(t, ctx, prefix, all, 3*time.Minute)
	t.Logf("answers to attempts: %s", rig.Counts(trafficOf(sim).answers))
	row.recovery = fmt.Sprintf("Lease taken %s after SIGKILL; pending Ready %s after; converged %s", round(takeover), round(pendingReady), round(converged))
}

// awaitLeader waits until exactly one replica says it leads, and returns which.
func awaitLeader(t *testing.T, ctx context.Context, ops []*rig.Operator) int {
	t.Helper()
	leader := -1
	NewWithT(t).Eventually(func(g Gomega) {
		leaders := 0
		for i, op := range ops {
			if isLeader(ctx, op) {
				leader, leaders = i, leaders+1
			}
		}
		g.Expect(leaders).To(Equal(1))
	}).WithContext(ctx).WithTimeout(90 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	return leader
}

// isLeader reads the replica's leader election gauge.
func isLeader(ctx context.Context, op *rig.Operator) bool {
	m, err := op.Metrics(ctx)
	return err == nil && rig.Sum(m, "leader_election_master_status", `name="`+leaseName+`"`) == 1
}

func lease(g Gomega, ctx context.Context) *coordinationv1.Lease {
	l := &coordinationv1.Lease{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: leaseNamespace, Name: leaseName}, l)).To(Succeed())
	return l
}

// awaitCreated waits until every tenant's instance exists, and returns how many are not Ready.
func awaitCreated(t *testing.T, ctx context.Context, tenants []*tenant) int {
	t.Helper()
	pending := 0
	NewWithT(t).Eventually(func(g Gomega) {
		pending = 0
		for _, tn := range tenants {
			inst := &saasv1alpha1.MarketplaceInstance{}
			g.Expect(admin.Get(ctx, client.ObjectKey{Name: tn.name()}, inst)).To(Succeed())
			if !meta.IsStatusConditionTrue(inst.Status.Conditions, saasv1alpha1.ConditionReady) {
				pending++
			}
		}
	}).WithContext(ctx).WithTimeout(2 * time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
	return pending
}

// expectUntouchedBefore checks that no reconciler wrote a condition of these instances before
// the new leader acquired the Lease: the dead leader is dead, and the survivor waited. Condition
// times have a resolution of one second.
func expectUntouchedBefore(g Gomega, ctx context.Context, tenants []*tenant, acquired time.Time) {
	for _, tn := range tenants {
		inst := &saasv1alpha1.MarketplaceInstance{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Name: tn.name()}, inst)).To(Succeed())
		for _, c := range inst.Status.Conditions {
			g.Expect(c.LastTransitionTime.Time).NotTo(BeTemporally("<", acquired.Truncate(time.Second)),
				"%s: condition %s set at %s, before the Lease was taken at %s", tn.name(), c.Type, c.LastTransitionTime, acquired)
		}
	}
}

func answeredTable(lb *balancer, names []string) string {
	s := ""
	for _, phase := range []string{phaseBefore, phaseGap, phaseAfter} {
		s += phase + ":"
		for _, n := range names {
			s += fmt.Sprintf(" %s %d", n, lb.answered(n, phase))
		}
		s += "; "
	}
	return s
}
