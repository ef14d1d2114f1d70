package webhook

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

func inst() *saasv1alpha1.MarketplaceInstance {
	return &saasv1alpha1.MarketplaceInstance{Spec: saasv1alpha1.MarketplaceInstanceSpec{
		InstanceID: "i", State: saasv1alpha1.StateActive,
		Order: saasv1alpha1.OrderReference{OrderID: "CS1", OrderLineID: "CS1-000001"},
	}}
}

func TestStatusOrdering(t *testing.T) {
	in := inst()
	steps := []struct {
		status string
		ts     int64
		want   outcome
		state  saasv1alpha1.InstanceState
	}{
		{koogallery.StatusFreeze, 100, applied, saasv1alpha1.StateFrozen},
		{koogallery.StatusUnfreeze, 300, applied, saasv1alpha1.StateActive},
		// The FREEZE signed at 200 arrives late: it must not undo the UNFREEZE of 300.
		{koogallery.StatusFreeze, 200, stale, saasv1alpha1.StateActive},
		// The same timestamp again (a retry of the last call) still applies.
		{koogallery.StatusUnfreeze, 300, applied, saasv1alpha1.StateActive},
		{koogallery.StatusFreeze, 400, applied, saasv1alpha1.StateFrozen},
	}
	for i, st := range steps {
		got, detail := statusMutation(st.status, st.ts)(in)
		if got != st.want || in.Spec.State != st.state || detail != st.status {
			t.Fatalf("step %d: outcome %v state %s detail %q", i, got, in.Spec.State, detail)
		}
	}
	if lastApplied(in, aspectState) != 400 {
		t.Errorf("last state call %d", lastApplied(in, aspectState))
	}
}

func TestAspectsAreIndependent(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	in := inst()
	if out, _ := statusMutation(koogallery.StatusFreeze, 500)(in); out != applied {
		t.Fatal("freeze")
	}
	// A renewal signed before the freeze still moves the expiry, but cannot thaw.
	past := metav1.NewTime(now.Add(-time.Hour))
	in.Spec.ExpireTime = &past
	req := &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: "CS2", OrderLineID: "CS2-1", InstanceID: "i"}
	expire := now.AddDate(1, 0, 0)
	out, detail := refreshMutation(req, expire, 400, now)(in)
	if out != applied || !in.Spec.ExpireTime.Time.Equal(expire) || in.Spec.State != saasv1alpha1.StateFrozen {
		t.Fatalf("old renewal: %v %q state %s", out, detail, in.Spec.State)
	}
	if in.Spec.CurrentOrder != nil {
		t.Error("a plain renewal must not change the order")
	}
	// A newer renewal of an expired, frozen instance lets it run again.
	in.Spec.ExpireTime = &past
	out, detail = refreshMutation(req, expire, 600, now)(in)
	if out != applied || in.Spec.State != saasv1alpha1.StateActive || detail != "RENEWAL: expires 2027-03-01T00:00:00Z, unfrozen" {
		t.Fatalf("new renewal: %v %q state %s", out, detail, in.Spec.State)
	}
	// An older expiry call is ignored.
	if out, _ := refreshMutation(req, now, 550, now)(in); out != stale {
		t.Error("older refresh applied")
	}
}

func TestRenewalDoesNotLiftViolationFreeze(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	in := inst()
	future := metav1.NewTime(now.AddDate(0, 1, 0))
	in.Spec.ExpireTime = &future
	statusMutation(koogallery.StatusFreeze, 100)(in)
	req := &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: "CS2", OrderLineID: "CS2-1"}
	refreshMutation(req, now.AddDate(1, 0, 0), 200, now)(in)
	if in.Spec.State != saasv1alpha1.StateFrozen {
		t.Error("a renewal lifted a freeze that was not an expiry freeze")
	}
}

func TestRefreshOrderChange(t *testing.T) {
	now := testNow
	for _, tt := range []struct {
		scene, product string
		resolved       string
		changes        bool
	}{
		{koogallery.SceneTrialToFormal, "", "", true},
		{koogallery.SceneRenewalChange, "", "", true},
		{koogallery.SceneRenewal, "", "P1", false},
		{koogallery.SceneRenewal, "P1", "P1", false},
		{koogallery.SceneRenewal, "P2", "P1", true},
		{koogallery.SceneUnsubscribeRenewalPeriod, "P2", "P1", false},
	} {
		in := inst()
		if tt.resolved != "" {
			in.Status.Order = &saasv1alpha1.ResolvedOrder{OrderID: "CS1", ProductID: tt.resolved}
		}
		req := &koogallery.RefreshInstanceRequest{Scene: tt.scene, OrderID: "CS9", OrderLineID: "CS9-1", ProductID: tt.product}
		refreshMutation(req, now, 1, now)(in)
		if got := in.Spec.CurrentOrder != nil && in.Spec.CurrentOrder.OrderID == "CS9"; got != tt.changes {
			t.Errorf("%s product %q: order changed %v, want %v", tt.scene, tt.product, got, tt.changes)
		}
	}
}

func TestUpgradeOrdering(t *testing.T) {
	in := inst()
	if out, _ := upgradeMutation("CS2", "CS2-1", 100)(in); out != applied || in.Spec.CurrentOrder.OrderID != "CS2" {
		t.Fatal("upgrade")
	}
	if out, _ := upgradeMutation("CS2", "CS2-1", 200)(in); out != repeated {
		t.Error("the same upgrade order must not be re-applied")
	}
	if out, _ := upgradeMutation("CS3", "CS3-1", 50)(in); out != stale || in.Spec.CurrentOrder.OrderID != "CS2" {
		t.Error("an older upgrade replaced a newer one")
	}
	if out, _ := upgradeMutation("CS1", "CS1-000001", 300)(in); out != applied || in.Spec.CurrentOrder != nil {
		t.Error("moving back to the purchase order must clear currentOrder")
	}
	if in.Annotations[annotationKey(aspectOrder)] != strconv.Itoa(300) {
		t.Errorf("annotation %v", in.Annotations)
	}
}

func TestPointerEscapes(t *testing.T) {
	if got := pointer("metadata", "annotations", "saas.marketplace.dev/last~call"); got != "/metadata/annotations/saas.marketplace.dev~1last~0call" {
		t.Error(got)
	}
}

// A call decided on a cached copy that lags is decided again on the API server's: here the cache
// still shows the instance Active with no state call applied, while the API server already has
// a FREEZE signed after this UNFREEZE. Decided on the cache, the UNFREEZE looks newest; its patch
// tests what it read and is refused, and decided again on the fresh copy it is late: acknowledged,
// recorded as ignored, and the instance stays frozen.
func TestStateChangeOnALaggingCopyDecidedAgain(t *testing.T) {
	frozen := readyInstance("fresh", "i-fresh")
	frozen.Spec.State = saasv1alpha1.StateFrozen
	frozen.Annotations = map[string]string{annotationKey(aspectState): strconv.FormatInt(testNow.UnixMilli(), 10)}
	lagging := interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		err := c.Patch(ctx, obj, patch, opts...)
		if err != nil && strings.Contains(err.Error(), "test") {
			// What the API server answers a failed test with: a bare 422.
			return apierrors.NewInvalid(saasv1alpha1.GroupVersion.WithKind("MarketplaceInstance").GroupKind(), obj.GetName(), nil)
		}
		return err
	}, List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if err := c.List(ctx, list, opts...); err != nil {
			return err
		}
		if l, ok := list.(*saasv1alpha1.MarketplaceInstanceList); ok {
			for i := range l.Items {
				l.Items[i].Spec.State = saasv1alpha1.StateActive
				l.Items[i].Annotations = nil
			}
		}
		return nil
	}}
	s, c := newFakeServerWith(t, Options{}, lagging, frozen)
	refused, behind := testutil.ToFloat64(callRereads.WithLabelValues("refused")), testutil.ToFloat64(callRereads.WithLabelValues("cache_behind"))
	signed := testNow.Add(-time.Second) // before the FREEZE the API server has
	body := mustJSON(t, &koogallery.UpdateInstanceStatusRequest{InstanceID: "i-fresh", Status: koogallery.StatusUnfreeze})
	if rep, _ := do(t, s, signedBasic(DefaultPath, testBasicKey, body, signed), testBasicKey); rep.ResultCode != koogallery.ResultSuccess {
		t.Fatalf("answer %s", rep.ResultCode)
	}
	if n := testutil.ToFloat64(callRereads.WithLabelValues("refused")); n != refused+1 {
		t.Fatalf("refused rereads %v, want %v", n, refused+1)
	}
	// The next call finds a cache that still does not show this replica's write: it reads first.
	if rep, _ := do(t, s, signedBasic(DefaultPath, testBasicKey, body, signed), testBasicKey); rep.ResultCode != koogallery.ResultSuccess {
		t.Fatalf("answer %s", rep.ResultCode)
	}
	if n := testutil.ToFloat64(callRereads.WithLabelValues("cache_behind")); n != behind+1 {
		t.Fatalf("cache-behind rereads %v, want %v", n, behind+1)
	}
	got := &saasv1alpha1.MarketplaceInstance{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "fresh"}, got); err != nil {
		t.Fatal(err)
	}
	h := recorded(got)
	if got.Spec.State != saasv1alpha1.StateFrozen || len(h) != 1 || !strings.Contains(h[0].Detail, "ignored") {
		t.Fatalf("state %s, history %+v", got.Spec.State, h)
	}
}
