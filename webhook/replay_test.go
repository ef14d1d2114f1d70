package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// Two replicas share the store but not their replay caches: a signed request replayed to the
// second one passes its verifier. Each call must then answer as it did the first time and change
// nothing, history included (one entry per signed call).
func TestReplayOnAnotherReplicaChangesNothing(t *testing.T) {
	a, c := newFakeServer(t, Options{}, readyInstance("cs1-000001", "inst-1"))
	b, err := newServer(c, c, staticKeys{}, nil, logr.Discard(), a.opts)
	if err != nil {
		t.Fatal(err)
	}
	get := func() *saasv1alpha1.MarketplaceInstance {
		inst := &saasv1alpha1.MarketplaceInstance{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: "cs1-000001"}, inst); err != nil {
			t.Fatal(err)
		}
		return inst
	}
	// signed returns a function replaying one signed request, byte for byte.
	signed := func(req koogallery.BasicRequest, ts time.Time) func() *http.Request {
		body := mustJSON(t, req)
		target := DefaultPath + "?" + koogallery.BasicQuery(testBasicKey, body, nonce(), koogallery.Timestamp(ts)).Encode()
		return func() *http.Request { return httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body)) }
	}
	freeze := signed(&koogallery.UpdateInstanceStatusRequest{InstanceID: "inst-1", Status: koogallery.StatusFreeze}, testNow.Add(-2*time.Second))
	unfreeze := signed(&koogallery.UpdateInstanceStatusRequest{InstanceID: "inst-1", Status: koogallery.StatusUnfreeze}, testNow.Add(-time.Second))
	renew := signed(&koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: "CS2", OrderLineID: "CS2-1",
		InstanceID: "inst-1", ExpireTime: koogallery.FormatExpireTime(testNow.AddDate(1, 0, 0))}, testNow)
	notify := signed(&koogallery.OrderNotifyRequest{OrderID: "CS1", OrderLineID: "CS1-000001", TestFlag: koogallery.TestFlagProduction}, testNow)

	for _, call := range []struct {
		name string
		req  func() *http.Request
	}{{"freeze", freeze}, {"unfreeze", unfreeze}, {"renew", renew}, {"notify", notify}} {
		first, _ := do(t, a, call.req(), testBasicKey)
		want := get()
		if again, _ := do(t, a, call.req(), testBasicKey); again.ResultCode != koogallery.ResultAuthFailed {
			t.Errorf("%s replayed to the same replica: %s", call.name, again.ResultCode)
		}
		other, _ := do(t, b, call.req(), testBasicKey)
		if other.ResultCode != first.ResultCode {
			t.Errorf("%s replayed to another replica answered %s, first %s", call.name, other.ResultCode, first.ResultCode)
		}
		got := get()
		if !equality.Semantic.DeepEqual(got.Spec, want.Spec) || !equality.Semantic.DeepEqual(got.Annotations, want.Annotations) ||
			!equality.Semantic.DeepEqual(recorded(got), recorded(want)) {
			t.Errorf("%s replayed to another replica changed the instance:\nhistory %v\nwant    %v", call.name, recorded(got), recorded(want))
		}
	}
	// The FREEZE replayed after the newer UNFREEZE is older than the state it would change: it
	// is acknowledged, thaws nothing and is not recorded a second time.
	before := get()
	if rep, _ := do(t, b, freeze(), testBasicKey); rep.ResultCode != koogallery.ResultAuthFailed {
		t.Errorf("second replay to the same replica: %s", rep.ResultCode)
	}
	b2, err := newServer(c, c, staticKeys{}, nil, logr.Discard(), a.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep, _ := do(t, b2, freeze(), testBasicKey); rep.ResultCode != koogallery.ResultSuccess {
		t.Errorf("stale replay on a third replica: %s", rep.ResultCode)
	}
	after := get()
	if after.Spec.State != saasv1alpha1.StateActive || len(recorded(after)) != len(recorded(before)) {
		t.Errorf("stale replay: state %s, history %d entries, was %d", after.Spec.State, len(recorded(after)), len(recorded(before)))
	}
	if len(recorded(after)) != 4 {
		t.Errorf("history %v, want one entry per call", recorded(after))
	}
}

// Kit syncs are not ordered by their timestamps, so idempotence alone would let an add replayed to
// another replica after a delete bring the entry back. The tenant namespace records their nonces:
// the replay is refused by every replica.
func TestKitReplayOnAnotherReplicaIsRefused(t *testing.T) {
	inst := readyInstance("cs1-000001", "inst-1")
	a, c := newFakeServer(t, Options{}, inst, tenantNamespaceOf(inst))
	b, err := newServer(c, c, staticKeys{}, nil, logr.Discard(), a.opts)
	if err != nil {
		t.Fatal(err)
	}
	tenant := func(flag int) func() *http.Request {
		body, err := koogallery.MarshalKitRequest(&koogallery.TenantSyncRequest{
			KitCommon: koogallery.NewKitCommon("inst-1", false, koogallery.FormatKitTime(testNow)),
			TenantID:  "T1", TenantCode: "acme", Name: "Acme", Flag: koogallery.NewInt(flag)})
		if err != nil {
			t.Fatal(err)
		}
		r := signedKit(koogallery.KitTenantSync, testKitKey, body, testNow)
		return func() *http.Request { return r.Clone(context.Background()) }
	}
	entries := func() int {
		cm := &corev1.ConfigMap{}
		err := c.Get(context.Background(), client.ObjectKey{Namespace: "mpi-cs1-000001", Name: KitTenantsConfigMap}, cm)
		if client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
		return len(cm.Data)
	}
	add, del := tenant(koogallery.FlagAdd), tenant(koogallery.FlagDelete)
	for _, step := range []struct {
		name    string
		srv     *Server
		req     func() *http.Request
		code    string
		entries int
	}{
		{"add", a, add, koogallery.ResultSuccess, 1},
		{"delete", a, del, koogallery.ResultSuccess, 0},
		{"the add replayed to another replica", b, add, koogallery.ResultAuthFailed, 0},
		{"the delete replayed to another replica", b, del, koogallery.ResultAuthFailed, 0},
		{"the add replayed to the same replica", a, add, koogallery.ResultAuthFailed, 0},
	} {
		rep, raw := do(t, step.srv, step.req(), testKitKey)
		if rep.ResultCode != step.code || entries() != step.entries {
			t.Errorf("%s: %s, %d entries; want %s, %d", step.name, raw, entries(), step.code, step.entries)
		}
	}
	// Expired nonces are dropped on the next write; the record holds only the live ones.
	later, _ := newFakeServer(t, Options{})
	later.client, later.reader, later.kit = c, c, &kitStore{client: c, reader: c}
	later.opts.Clock = func() time.Time { return testNow.Add(3 * time.Minute) }
	fresh, err := later.kit.admitKitCall(context.Background(), inst, "mpi-cs1-000001", "another-nonce", later.opts.Clock(), later.opts.Clock().Add(2*time.Minute))
	cm := &corev1.ConfigMap{}
	if gerr := c.Get(context.Background(), client.ObjectKey{Namespace: "mpi-cs1-000001", Name: KitCallsConfigMap}, cm); gerr != nil {
		t.Fatal(gerr)
	}
	if err != nil || !fresh || len(cm.Data) != 1 || cm.Labels[saasv1alpha1.LabelInstance] == "" || cm.Labels[LabelKitData] != "" {
		t.Errorf("admit after expiry: %v %v, record %v labels %v", fresh, err, cm.Data, cm.Labels)
	}
}
