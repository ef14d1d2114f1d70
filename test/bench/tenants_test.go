//go:build bench

package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// The defaults of the manager's flags of the same names (cmd/manager), which the bare tenants
// share so that the operator is compared with a client that has the same workers and the same
// client-side rate limit. BENCH_OPERATOR_ARGS changes them for both.
const (
	workersFlag = "max-concurrent-reconciles"
	qpsFlag     = "kube-api-qps"
	burstFlag   = "kube-api-burst"
)

var managerDefaults = map[string]float64{workersFlag: 4, qpsFlag: 200, burstFlag: 400}

// labelBare takes the place of the instance label on bare tenants' objects: with the instance
// label the manager's cache would hold them, and the operator's memory and informers would
// carry the bare runs.
const labelBare = "bench.marketplace.dev/bare-tenant"

// bareResult is a bare provisioning run: the ceiling an operator run of the same orders is
// compared with.
type bareResult struct {
	Orders, Workers    int
	CR                 bool // with each tenant's custom resource, its status and its Event (bareCRGVK)
	Pair               int  // the operator run of the same orders it is compared with
	First              bool // run before that operator run, not after it
	QPS                float64
	Burst              int
	Total              time.Duration
	PerSecond          float64
	ReadyP50, ReadyP99 time.Duration
	CPU                map[string]time.Duration
	Mix                apiMix
}

// managerFlag is the manager's value of a numeric flag: as BENCH_OPERATOR_ARGS sets it, else
// the manager's default.
func managerFlag(args []string, name string) float64 {
	v, ok := "", false
	for i, a := range args {
		flag, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if flag != name || !strings.HasPrefix(a, "-") {
			continue
		}
		switch {
		case hasValue:
			v, ok = value, true
		case i+1 < len(args):
			v, ok = args[i+1], true
		}
	}
	if n, err := strconv.ParseFloat(v, 64); ok && err == nil {
		return n
	}
	return managerDefaults[name]
}

// bareTenants provisions n tenants without the operator: the objects the reconciler applies for
// each of n orders of the bench's plan, rendered by the same render functions, applied the same
// way (server-side apply with force, the credentials Secret created), by as many workers as the
// manager has, through a client with the manager's rate limit; then it waits until every
// tenant's Deployment is Available, which is what the operator's Ready waits for. Only the
// operator's bookkeeping is missing: the MarketplaceInstance and its status (with its
// inventory), the finalizer, the Query Order call, the Event of each tenant's Ready, and the
// owner references (without an owner in the cluster the garbage collector would delete the
// objects). withCR adds that bookkeeping back but for the marketplace's side (see bareCRGVK):
// each tenant starts with its custom resource and ends with its Ready status and Event, which
// the same workers write as each Deployment becomes Available, ahead of new tenants.
func (b *bench) bareTenants(prefix string, n int, withCR bool) bareResult {
	args := b.settings.operatorArgs
	r := bareResult{Orders: n, CR: withCR, Workers: int(managerFlag(args, workersFlag)),
		QPS: managerFlag(args, qpsFlag), Burst: int(managerFlag(args, burstFlag))}
	plan := &saasv1alpha1.MarketplacePlan{}
	if err := b.cluster.Admin.Get(b.ctx, client.ObjectKey{Name: testenv.BasicPlan}, plan); err != nil {
		b.t.Fatal(err)
	}
	c := b.limitedClient(float32(r.QPS), r.Burst)
	t := newBareRun(n, prefix, withCR)
	watch := b.watchBareDeployments(func(ns string) {
		if i, ok := t.index[ns]; ok && t.withCR {
			t.available <- i
		}
	})
	defer watch.stop()

	timeout := 2*time.Minute + time.Duration(n)*300*time.Millisecond
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, r.Workers)
	clusterBefore := b.apiServerMetrics()
	cpu := cpuTimes()
	start := time.Now()
	for range r.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.work(ctx, c, plan); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.t.Fatalf("bare tenants: %v", err)
	}
	times := t.ready
	if !withCR {
		times = watch.await(b, t.namespaces, timeout)
	} else if ctx.Err() != nil {
		b.t.Fatalf("bare tenants with their custom resource not Ready after %s", timeout)
	}
	r.CPU = cpuSince(cpu)
	r.Mix = mixSince(clusterBefore, b.apiServerMetrics(), n)
	lat := make([]time.Duration, len(times))
	for i, at := range times {
		lat[i] = at.Sub(start)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.Total = lat[len(lat)-1]
	r.PerSecond = float64(n) / r.Total.Seconds()
	r.ReadyP50, r.ReadyP99 = lat[len(lat)/2], lat[(len(lat)-1)*99/100]
	return r
}

// bareRun is the shared state of one bare provisioning run's workers.
type bareRun struct {
	withCR     bool
	next       atomic.Int64
	insts      []*saasv1alpha1.MarketplaceInstance
	namespaces []string
	index      map[string]int // namespace -> tenant
	// With the custom resource: each tenant's resource as its first status write left it,
	// closed once that write is done, the tenants whose Deployment became Available, when each
	// was marked Ready, and how many are left.
	crs       []*unstructured.Unstructured
	status    []saasv1alpha1.MarketplaceInstanceStatus
	applied   []chan struct{}
	available chan int
	ready     []time.Time
	left      atomic.Int64
	done      chan struct{}
}

func newBareRun(n int, prefix string, withCR bool) *bareRun {
	t := &bareRun{withCR: withCR, insts: make([]*saasv1alpha1.MarketplaceInstance, n), namespaces: make([]string, n), index: map[string]int{},
		crs: make([]*unstructured.Unstructured, n), status: make([]saasv1alpha1.MarketplaceInstanceStatus, n),
		applied: make([]chan struct{}, n), available: make(chan int, n), ready: make([]time.Time, n), done: make(chan struct{})}
	for i := range n {
		t.insts[i] = bareInstance(prefix, i)
		t.namespaces[i] = render.NamespaceName(t.insts[i].Name)
		t.index[t.namespaces[i]] = i
		t.applied[i] = make(chan struct{})
	}
	t.left.Store(int64(n))
	return t
}

// work is one worker: a tenant whose Deployment became Available first, as the operator's
// readinessFirst, then the next new tenant; with the custom resource it stays until every
// tenant is Ready.
func (t *bareRun) work(ctx context.Context, c client.Client, plan *saasv1alpha1.MarketplacePlan) error {
	for {
		select {
		case i := <-t.available:
			if err := t.markReady(ctx, c, i); err != nil {
				return err
			}
			continue
		default:
		}
		if i := int(t.next.Add(1)) - 1; i < len(t.insts) {
			if err := t.provision(ctx, c, plan, i); err != nil {
				return fmt.Errorf("tenant %d: %w", i, err)
			}
			continue
		}
		if !t.withCR {
			return nil
		}
		select {
		case i := <-t.available:
			if err := t.markReady(ctx, c, i); err != nil {
				return err
			}
		case <-t.done:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func (t *bareRun) provision(ctx context.Context, c client.Client, plan *saasv1alpha1.MarketplacePlan, i int) error {
	inst := t.insts[i]
	if !t.withCR {
		_, err := applyTenant(ctx, c, inst, plan, nil)
		return err
	}
	cr, err := newBareCR(inst)
	if err != nil {
		return err
	}
	if err := c.Create(ctx, cr); err != nil {
		return fmt.Errorf("creating its custom resource: %w", err)
	}
	// The controller reference every child carries, as render.OwnerReference for an instance.
	inventory, err := applyTenant(ctx, c, inst, plan, metav1.NewControllerRef(cr, bareCRGVK))
	if err != nil {
		return err
	}
	base := cr.DeepCopy()
	t.status[i] = provisioningStatus(inst, plan, inventory)
	if err := setStatus(cr, t.status[i]); err != nil {
		return err
	}
	if err := c.Status().Patch(ctx, cr, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("patching its status: %w", err)
	}
	t.crs[i] = cr
	close(t.applied[i])
	return nil
}

// markReady writes tenant i's Ready once its first status write is done.
func (t *bareRun) markReady(ctx context.Context, c client.Client, i int) error {
	select {
	case <-t.applied[i]:
	case <-ctx.Done():
		return nil
	}
	if err := writeReady(ctx, c, t.crs[i], t.status[i]); err != nil {
		return err
	}
	t.ready[i] = time.Now()
	if t.left.Add(-1) == 0 {
		close(t.done)
	}
	return nil
}

// bareInstance is the instance the webhook would create for order i of a load run, in memory
// only: render reads its name and IDs.
func bareInstance(prefix string, i int) *saasv1alpha1.MarketplaceInstance {
	order := simulator.LoadOrderID(prefix, i)
	return &saasv1alpha1.MarketplaceInstance{
		ObjectMeta: metav1.ObjectMeta{Name: instanceName(order)},
		Spec: saasv1alpha1.MarketplaceInstanceSpec{InstanceID: fmt.Sprintf("%s-bare-%d", strings.ToLower(prefix), i),
			Order: saasv1alpha1.OrderReference{OrderID: order, OrderLineID: simulator.MockLineID(order)},
			State: saasv1alpha1.StateActive},
	}
}

// applyTenant writes one tenant in the order of the reconciler's steps: namespace, quota and
// limits, network policies, entitlement, credentials, the plan's workload. With an owner, every
// object carries it as its controller reference, and the inventory of what was applied is
// returned as the reconciler keeps it.
func applyTenant(ctx context.Context, c client.Client, inst *saasv1alpha1.MarketplaceInstance, plan *saasv1alpha1.MarketplacePlan, owner *metav1.OwnerReference) ([]saasv1alpha1.ResourceRef, error) {
	objs := []client.Object{render.Namespace(inst)}
	if q := render.ResourceQuota(inst, plan); q != nil {
		objs = append(objs, q)
	}
	if l := render.LimitRange(inst, plan); l != nil {
		objs = append(objs, l)
	}
	opts := render.NetworkOptions{EgressExcept: render.DefaultEgressExcept}
	if plan.Spec.Network != nil {
		opts.Egress = plan.Spec.Network.Egress
	}
	for _, np := range render.NetworkPolicies(inst, opts) {
		objs = append(objs, np)
	}
	entitlement, err := render.EntitlementConfigMap(inst, plan.Name, false)
	if err != nil {
		return nil, fmt.Errorf("rendering the entitlement: %w", err)
	}
	objs = append(objs, entitlement)
	var inventory []saasv1alpha1.ResourceRef
	apply := func(o client.Object) error {
		ref, err := applyBare(ctx, c, o, owner)
		inventory = append(inventory, ref)
		return err
	}
	for _, o := range objs {
		if err := apply(o); err != nil {
			return nil, err
		}
	}
	password, err := render.GeneratePassword(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating password: %w", err)
	}
	secret := render.CredentialsSecret(inst, render.AdminUserName(plan), password)
	relabel(secret)
	if owner != nil {
		secret.SetOwnerReferences([]metav1.OwnerReference{*owner})
	}
	if err := c.Create(ctx, secret); err != nil {
		return nil, fmt.Errorf("creating credentials secret: %w", err)
	}
	workload, err := render.Workload(inst, plan, render.Policy{})
	if err != nil {
		return nil, fmt.Errorf("rendering the workload: %w", err)
	}
	for _, o := range workload {
		if err := apply(o); err != nil {
			return nil, err
		}
	}
	render.SortInventory(inventory)
	return inventory, nil
}

// applyBare applies obj with owner, if any, as its controller reference, and returns its entry in
// the inventory: the hash of what was applied and the generation the apply left.
func applyBare(ctx context.Context, c client.Client, obj client.Object, owner *metav1.OwnerReference) (saasv1alpha1.ResourceRef, error) {
	relabel(obj)
	if owner != nil {
		obj.SetOwnerReferences([]metav1.OwnerReference{*owner})
	}
	u, err := toWritten(obj)
	if err != nil {
		return saasv1alpha1.ResourceRef{}, err
	}
	ref := saasv1alpha1.ResourceRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName()}
	if owner != nil {
		if ref.AppliedHash, err = render.AppliedHash(u); err != nil {
			return ref, err
		}
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(render.FieldOwner), client.ForceOwnership); err != nil {
		return ref, fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	ref.Generation = u.GetGeneration()
	return ref, nil
}

// toWritten is obj as an unstructured object, as a client writes it: without the creation time
// and the status the API server sets.
func toWritten(obj client.Object) (*unstructured.Unstructured, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("converting %T %s: %w", obj, obj.GetName(), err)
		}
		u = &unstructured.Unstructured{Object: m}
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

// relabel swaps the instance label for labelBare, keeping its value.
func relabel(obj client.Object) {
	l := obj.GetLabels()
	l[labelBare] = l[saasv1alpha1.LabelInstance]
	delete(l, saasv1alpha1.LabelInstance)
	obj.SetLabels(l)
}

// limitedClient is an admin client with the given client-side rate limit.
func (b *bench) limitedClient(qps float32, burst int) client.Client {
	rc, err := b.cluster.RESTConfig("admin")
	if err != nil {
		b.t.Fatal(err)
	}
	rc.QPS, rc.Burst = qps, burst
	c, err := client.New(rc, client.Options{Scheme: b.cluster.Admin.Scheme()})
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// bareWatch remembers when each bare tenant's Deployment first became Available, through one
// label-scoped watch.
type bareWatch struct {
	stop  context.CancelFunc
	mu    sync.Mutex
	ready map[string]time.Time // namespace -> when
}

// onAvailable, if not nil, is told each namespace once, when its Deployment first is Available.
func (b *bench) watchBareDeployments(onAvailable func(namespace string)) *bareWatch {
	rc, err := b.cluster.RESTConfig("admin")
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := labels.NewRequirement(labelBare, selection.Exists, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	informers, err := cache.New(rc, cache.Options{Scheme: b.cluster.Admin.Scheme(),
		ByObject: map[client.Object]cache.ByObject{&appsv1.Deployment{}: {Label: labels.NewSelector().Add(*req)}}})
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	w := &bareWatch{stop: cancel, ready: map[string]time.Time{}}
	inf, err := informers.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		b.t.Fatal(err)
	}
	observe := func(obj any) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok || !deploymentAvailable(d) {
			return
		}
		w.mu.Lock()
		_, done := w.ready[d.Namespace]
		if !done {
			w.ready[d.Namespace] = time.Now()
		}
		w.mu.Unlock()
		if !done && onAvailable != nil {
			onAvailable(d.Namespace)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: observe, UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		b.t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		b.t.Fatal("the bare tenants' watch did not sync")
	}
	return w
}

// deploymentAvailable is the operator's readiness of a Deployment: its controller saw the
// latest spec, every wanted replica is updated and ready, and it reports Available.
func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.UpdatedReplicas < want || s.ReadyReplicas < want {
		return false
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return want == 0
}

// await waits until every namespace's Deployment is Available and returns when each became so.
func (w *bareWatch) await(b *bench, namespaces []string, timeout time.Duration) []time.Time {
	var times []time.Time
	NewWithT(b.t).Eventually(func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		times = times[:0]
		for _, ns := range namespaces {
			at, ok := w.ready[ns]
			if !ok {
				return false
			}
			times = append(times, at)
		}
		return true
	}).WithTimeout(timeout).WithPolling(200*time.Millisecond).Should(BeTrue(), func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return fmt.Sprintf("bare tenants not Available after %s: %d of %d", timeout, len(w.ready), len(namespaces))
	})
	return times
}

// removeBareTenants deletes every bare tenant namespace and waits until they are gone, so that
// the namespace controller's work does not fall into a later measurement.
func (b *bench) removeBareTenants() {
	c := b.plainClient()
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := c.List(b.ctx, &list, client.HasLabels{labelBare}); err != nil {
		b.t.Fatal(err)
	}
	for i := range list.Items {
		if err := c.Delete(b.ctx, &list.Items[i]); client.IgnoreNotFound(err) != nil {
			b.t.Fatal(err)
		}
	}
	NewWithT(b.t).Eventually(func() (int, error) {
		err := c.List(b.ctx, &list, client.HasLabels{labelBare})
		return len(list.Items), err
	}).WithTimeout(15*time.Minute).WithPolling(2*time.Second).Should(BeZero(), "bare tenant namespaces left")
}

func TestManagerFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want float64
	}{
		{nil, 4},
		{[]string{"--max-concurrent-reconciles=8"}, 8},
		{[]string{"-max-concurrent-reconciles", "2", "--kube-api-qps=50"}, 2},
		{[]string{"--max-concurrent-reconciles"}, 4},
		{[]string{"max-concurrent-reconciles=8"}, 4},
	} {
		if got := managerFlag(tc.args, workersFlag); got != tc.want {
			t.Errorf("managerFlag(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{0.7}, 0.7},
		{[]float64{0.9, 0.6, 0.8}, 0.8},
		{[]float64{0.9, 0.6, 0.8, 0.7}, 0.75},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
