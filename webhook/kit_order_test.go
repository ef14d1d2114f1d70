package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// kitAt is the common part of a sync whose body says it was made at ts. Every send signs it anew
// (fresh x-nonce and x-timestamp), as KooGallery does when it calls again.
func kitAt(id string, ts time.Time) koogallery.KitCommon {
	return koogallery.NewKitCommon(id, false, koogallery.FormatKitTime(ts))
}

func kitUser(name, org string) koogallery.User {
	return koogallery.User{UserName: name, Name: name, OrgCode: org, Role: koogallery.RoleUser, Enable: "true", Email: name}
}

// entriesWith returns the decoded kit entries of one kind in ns whose field key is value.
func entriesWith(g Gomega, ns, data, key, value string) []map[string]any {
	var out []map[string]any
	for _, e := range kitEntries(g, ns, data) {
		if e[key] == value {
			out = append(out, e)
		}
	}
	return out
}

// Syncs are applied in sync-time order per entity: currentSyncTime for users, timeStamp for the
// others. A late add older than a delete (a retry KooGallery signed anew, delivered after the
// delete) changes nothing; a newer add brings the entity back; a late delete older than that add
// does not remove it again.
func TestKitLateOlderSyncsNeverUndoNewerOnes(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id, ns := inst.Spec.InstanceID, inst.Status.Namespace
	ok := Equal(koogallery.ResultSuccess)
	t0 := time.Now().Add(-time.Minute)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	secret, err := koogallery.EncryptClientSecret(&rsaKey.PublicKey, "late-secret")
	g.Expect(err).NotTo(HaveOccurred())

	user := func(flag, s int) koogallery.Reply {
		return kitSend(g, &koogallery.AuthSyncRequest{KitCommon: kitAt(id, time.Now()), TenantID: "T", AppID: "A",
			UserList: koogallery.UserList{kitUser("alice", "D1")}, CurrentSyncTime: koogallery.FormatKitTime(at(s)), Flag: koogallery.NewInt(flag)})
	}
	org := func(flag, s int) koogallery.Reply {
		return kitSend(g, &koogallery.SingleOrgSyncRequest{KitCommon: kitAt(id, at(s)), TenantID: "T", OrgCode: "D1",
			OrgName: "Sales", Flag: koogallery.NewInt(flag)})
	}
	app := func(flag, s int) koogallery.Reply {
		return kitSend(g, &koogallery.ApplicationSyncRequest{KitCommon: kitAt(id, at(s)), TenantID: "T", AppID: "A",
			ClientID: "client", ClientSecret: secret, Flag: koogallery.NewInt(flag)})
	}
	users := func() []map[string]any { return entriesWith(g, ns, "users", "userName", "alice") }
	orgs := func() []map[string]any { return entriesWith(g, ns, "departments", "orgCode", "D1") }
	apps := func() []map[string]any { return entriesWith(g, ns, "applications", "appId", "A") }

	g.Expect(app(koogallery.FlagAdd, 1).ResultCode).To(ok)
	g.Expect(user(koogallery.FlagAdd, 1).ResultCode).To(ok)
	g.Expect(org(koogallery.FlagAdd, 1).ResultCode).To(ok)
	g.Expect(users()).To(HaveLen(1))
	g.Expect(orgs()).To(HaveLen(1))
	g.Expect(apps()).To(HaveLen(1))

	// Revoked, then the add arrives late: the user stays revoked; same for a modify.
	g.Expect(user(koogallery.FlagRevoke, 3).ResultCode).To(ok)
	g.Expect(users()).To(BeEmpty())
	late := user(koogallery.FlagAdd, 1)
	g.Expect(late.ResultCode).To(ok)
	g.Expect(late.ResultMsg).To(ContainSubstring("1 of 1 entries are older than what is stored and were not applied"))
	g.Expect(user(koogallery.FlagModify, 2).ResultCode).To(ok)
	g.Expect(users()).To(BeEmpty(), "a late, older add brought a revoked user back")
	// Authorised again later: back; the late revoke retried does not remove it again.
	g.Expect(user(koogallery.FlagAdd, 5).ResultCode).To(ok)
	g.Expect(user(koogallery.FlagRevoke, 3).ResultCode).To(ok)
	g.Expect(users()).To(ConsistOf(HaveKeyWithValue("currentSyncTime", koogallery.FormatKitTime(at(5)))))
	// An older modify does not overwrite a newer state either.
	g.Expect(user(koogallery.FlagModify, 4).ResultCode).To(ok)
	g.Expect(users()).To(ConsistOf(HaveKeyWithValue("currentSyncTime", koogallery.FormatKitTime(at(5)))))

	// A deleted department and a deleted app stay deleted under a late add.
	g.Expect(org(koogallery.FlagDelete, 3).ResultCode).To(ok)
	g.Expect(org(koogallery.FlagAdd, 1).ResultCode).To(ok)
	g.Expect(org(koogallery.FlagModify, 2).ResultCode).To(ok)
	g.Expect(orgs()).To(BeEmpty(), "a late, older add brought a deleted department back")
	g.Expect(app(koogallery.FlagDelete, 6).ResultCode).To(ok)
	g.Expect(app(koogallery.FlagAdd, 1).ResultCode).To(ok)
	g.Expect(apps()).To(BeEmpty(), "a late, older add brought a deleted app back")
	g.Expect(users()).To(BeEmpty(), "the app's users went with it")
	g.Expect(user(koogallery.FlagAdd, 5).ResultCode).To(ok)
	g.Expect(users()).To(BeEmpty(), "a user synced before its app was deleted stays deleted")

	// A full department tree taken before a single delete does not bring the department back,
	// and a single add older than the tree does not bring back what the tree left out, nor add a
	// department it did not list.
	g.Expect(org(koogallery.FlagAdd, 7).ResultCode).To(ok)
	g.Expect(kitSend(g, &koogallery.AllOrgSyncRequest{KitCommon: kitAt(id, at(9)), TenantID: "T",
		OrgInfoList: koogallery.OrgInfoList{{OrgCode: "D2", OrgName: "Support"}}}).ResultCode).To(ok)
	g.Expect(orgs()).To(BeEmpty())
	g.Expect(org(koogallery.FlagAdd, 8).ResultCode).To(ok)
	g.Expect(orgs()).To(BeEmpty(), "a single add older than the full tree brought back what the tree left out")
	// The same for a department the tree never saw: synced before it, it arrives after it.
	late3 := func(s int) koogallery.Reply {
		return kitSend(g, &koogallery.SingleOrgSyncRequest{KitCommon: kitAt(id, at(s)), TenantID: "T", OrgCode: "D3",
			OrgName: "Late", Flag: koogallery.NewInt(koogallery.FlagAdd)})
	}
	g.Expect(late3(8).ResultMsg).To(ContainSubstring("1 of 1 entries are older than what is stored and were not applied"))
	g.Expect(entriesWith(g, ns, "departments", "orgCode", "D3")).To(BeEmpty(), "a department synced before the full tree was added after it")
	g.Expect(late3(10).ResultCode).To(ok)
	g.Expect(entriesWith(g, ns, "departments", "orgCode", "D3")).To(HaveLen(1), "a department synced after the full tree was refused")
	g.Expect(org(koogallery.FlagDelete, 10).ResultCode).To(ok)
	g.Expect(kitSend(g, &koogallery.AllOrgSyncRequest{KitCommon: kitAt(id, at(9)), TenantID: "T",
		OrgInfoList: koogallery.OrgInfoList{{OrgCode: "D1", OrgName: "Sales"}, {OrgCode: "D2", OrgName: "Support"}}}).ResultCode).To(ok)
	g.Expect(orgs()).To(BeEmpty(), "an older full tree brought a deleted department back")
	g.Expect(entriesWith(g, ns, "departments", "orgCode", "D2")).To(HaveLen(1))

	// What remembers the deletes holds no readable ID.
	deleted := &corev1.ConfigMap{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: webhook.KitDeletedConfigMap}, deleted)).To(Succeed())
	g.Expect(deleted.Labels).NotTo(HaveKey(webhook.LabelKitData))
	for k, v := range deleted.Data {
		g.Expect(k + v).NotTo(Or(ContainSubstring("alice"), ContainSubstring("D1")))
	}
}

// Deleting a tenant removes everything synced for it: its apps with their decrypted client
// secrets, their users and its departments; nothing of it is left readable in the namespace.
// Deleting an app removes its users; deleting a department unlinks its sub-departments. Other
// tenants and apps are untouched.
func TestKitDeletesCascade(t *testing.T) {
	g := NewWithT(t)
	inst, orderID := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id, ns := inst.Spec.InstanceID, inst.Status.Namespace
	ok := Equal(koogallery.ResultSuccess)
	now := func() koogallery.KitCommon { return kitAt(id, time.Now()) }
	for _, tenant := range []string{"GONE-TENANT", "KEPT-TENANT"} {
		g.Expect(kitSend(g, &koogallery.TenantSyncRequest{KitCommon: now(), OrderID: orderID, TenantID: tenant, TenantCode: tenant + "-code",
			Name: tenant + " Ltd", Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(ok)
		for _, app := range []string{"APP-1", "APP-2"} {
			secret, err := koogallery.EncryptClientSecret(&rsaKey.PublicKey, tenant+"-"+app+"-client-secret")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(kitSend(g, &koogallery.ApplicationSyncRequest{KitCommon: now(), TenantID: tenant, AppID: app, ClientID: app + "-client",
				ClientSecret: secret, Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(ok)
			g.Expect(kitSend(g, &koogallery.AuthSyncRequest{KitCommon: now(), TenantID: tenant, AppID: app,
				UserList:        koogallery.UserList{kitUser(tenant+"-"+app+"-u1", "ROOT"), kitUser(tenant+"-"+app+"-u2", "SUB")},
				CurrentSyncTime: koogallery.FormatKitTime(time.Now()), Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(ok)
		}
		g.Expect(kitSend(g, &koogallery.AllOrgSyncRequest{KitCommon: now(), TenantID: tenant, OrgInfoList: koogallery.OrgInfoList{
			{OrgCode: "ROOT", OrgName: "Head office"}, {OrgCode: "SUB", OrgName: "Branch", ParentCode: "ROOT"},
			{OrgCode: "LEAF", OrgName: "Desk", ParentCode: "SUB"}}}).ResultCode).To(ok)
	}
	g.Expect(kitEntries(g, ns, "users")).To(HaveLen(8))

	// An app's delete takes its users and its client secret, not the other app's.
	g.Expect(kitSend(g, &koogallery.ApplicationSyncRequest{KitCommon: now(), TenantID: "KEPT-TENANT", AppID: "APP-2", ClientID: "APP-2-client",
		Flag: koogallery.NewInt(koogallery.FlagDelete)}).ResultCode).To(ok)
	g.Expect(entriesWith(g, ns, "users", "tenantId", "KEPT-TENANT")).To(ConsistOf(
		HaveKeyWithValue("userName", "KEPT-TENANT-APP-1-u1"), HaveKeyWithValue("userName", "KEPT-TENANT-APP-1-u2")))
	g.Expect(entriesWith(g, ns, "applications", "tenantId", "KEPT-TENANT")).To(ConsistOf(HaveKeyWithValue("appId", "APP-1")))

	// A department's delete unlinks its sub-departments.
	g.Expect(kitSend(g, &koogallery.SingleOrgSyncRequest{KitCommon: now(), TenantID: "KEPT-TENANT", OrgCode: "ROOT", OrgName: "Head office",
		Flag: koogallery.NewInt(koogallery.FlagDelete)}).ResultCode).To(ok)
	g.Expect(entriesWith(g, ns, "departments", "tenantId", "KEPT-TENANT")).To(ConsistOf(
		And(HaveKeyWithValue("orgCode", "SUB"), Not(HaveKey("parentCode"))),
		And(HaveKeyWithValue("orgCode", "LEAF"), HaveKeyWithValue("parentCode", "SUB"))))

	// The tenant's delete takes everything of it.
	g.Expect(kitSend(g, &koogallery.TenantSyncRequest{KitCommon: now(), TenantID: "GONE-TENANT", TenantCode: "GONE-TENANT-code",
		Name: "GONE-TENANT Ltd", Flag: koogallery.NewInt(koogallery.FlagDelete)}).ResultCode).To(ok)
	for _, kind := range []string{"tenants", "applications", "users", "departments"} {
		g.Expect(entriesWith(g, ns, kind, "tenantId", "GONE-TENANT")).To(BeEmpty(), kind)
		g.Expect(entriesWith(g, ns, kind, "tenantId", "KEPT-TENANT")).NotTo(BeEmpty(), kind)
	}
	ctx := context.Background()
	cms := &corev1.ConfigMapList{}
	g.Expect(k8s.List(ctx, cms, client.InNamespace(ns))).To(Succeed())
	secrets := &corev1.SecretList{}
	g.Expect(k8s.List(ctx, secrets, client.InNamespace(ns))).To(Succeed())
	var readable []string
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			readable = append(readable, cm.Name+" "+k+" "+v)
		}
	}
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			readable = append(readable, s.Name+" "+k+" "+string(v))
		}
	}
	for _, r := range readable {
		g.Expect(r).NotTo(ContainSubstring("GONE-TENANT"), "nothing of a deleted tenant is left readable")
	}
	g.Expect(strings.Join(readable, "\n")).To(ContainSubstring("KEPT-TENANT-APP-1-client-secret"))
}

// A sync without an instanceId is the seller's own app: it is stored in the operator's
// namespace, in the same objects a tenant namespace has, and deletes cascade there too.
func TestKitSellerOwnAppIsStored(t *testing.T) {
	g := NewWithT(t)
	ok := Equal(koogallery.ResultSuccess)
	ns := testenv.OperatorNamespace
	now := func() koogallery.KitCommon { return kitAt("", time.Now()) }
	secret, err := koogallery.EncryptClientSecret(&rsaKey.PublicKey, "seller-client-secret")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kitSend(g, &koogallery.TenantSyncRequest{KitCommon: now(), TenantID: "SELLER", TenantCode: "seller", Name: "Seller",
		Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(ok)
	g.Expect(kitSend(g, &koogallery.ApplicationSyncRequest{KitCommon: now(), TenantID: "SELLER", AppID: "OWN", ClientID: "own-client",
		ClientSecret: secret, Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(ok)
	g.Expect(kitSend(g, &koogallery.AuthSyncRequest{KitCommon: now(), TenantID: "SELLER", AppID: "OWN", UserList: koogallery.UserList{kitUser("admin", "HQ")},
		CurrentSyncTime: koogallery.FormatKitTime(time.Now()), Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(ok)
	g.Expect(kitSend(g, &koogallery.AllOrgSyncRequest{KitCommon: now(), TenantID: "SELLER",
		OrgInfoList: koogallery.OrgInfoList{{OrgCode: "HQ", OrgName: "Head office"}}}).ResultCode).To(ok)

	g.Expect(entriesWith(g, ns, "tenants", "tenantId", "SELLER")).To(ConsistOf(HaveKeyWithValue("instanceId", "")))
	g.Expect(entriesWith(g, ns, "applications", "tenantId", "SELLER")).To(ConsistOf(HaveKeyWithValue("clientSecret", "seller-client-secret")))
	g.Expect(entriesWith(g, ns, "users", "tenantId", "SELLER")).To(HaveLen(1))
	g.Expect(entriesWith(g, ns, "departments", "tenantId", "SELLER")).To(HaveLen(1))
	apps := &corev1.Secret{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: webhook.KitAppsSecret}, apps)).To(Succeed())
	g.Expect(apps.OwnerReferences).To(BeEmpty(), "no instance owns the seller's data")
	g.Expect(apps.Labels).To(HaveKeyWithValue(webhook.LabelKitData, "applications"))

	g.Expect(kitSend(g, &koogallery.TenantSyncRequest{KitCommon: now(), TenantID: "SELLER", TenantCode: "seller", Name: "Seller",
		Flag: koogallery.NewInt(koogallery.FlagDelete)}).ResultCode).To(ok)
	for _, kind := range []string{"tenants", "applications", "users", "departments"} {
		g.Expect(entriesWith(g, ns, kind, "tenantId", "SELLER")).To(BeEmpty(), kind)
	}
}

// failingTransport fails the first n calls before they reach the endpoint, as a network fault
// would, and sends the rest.
type failingTransport struct {
	n     int32
	calls atomic.Int32
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.calls.Add(1) <= f.n {
		return nil, errors.New("connection reset")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// KooGallery calls a failed kit sync again (§1.10), signed anew: the endpoint stores the call
// that gets through, and the simulator gives up after five calls.
func TestKitSyncRetriedBySimulatorIsStored(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id, ns := inst.Spec.InstanceID, inst.Status.Namespace
	flaky := &failingTransport{n: 4}
	retrying, err := simulator.New(simulator.Config{ProductionURL: endpoint, BasicKey: basicKey, KitKey: kitKey,
		HTTPClient: &http.Client{Transport: flaky}, RetrySchedule: []time.Duration{10 * time.Millisecond}})
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := retrying.SendKit(context.Background(), &koogallery.TenantSyncRequest{KitCommon: kitAt(id, time.Now()), TenantID: "RETRIED",
		TenantCode: "retried", Name: "Retried Ltd", Flag: koogallery.NewInt(koogallery.FlagAdd)})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.Attempts).To(Equal(simulator.KitCalls))
	g.Expect(entriesWith(g, ns, "tenants", "tenantId", "RETRIED")).To(HaveLen(1))

	flaky.n, _ = simulator.KitCalls+1, flaky.calls.Swap(0)
	_, err = retrying.SendKit(context.Background(), &koogallery.TenantSyncRequest{KitCommon: kitAt(id, time.Now()), TenantID: "LOST",
		TenantCode: "lost", Name: "Lost Ltd", Flag: koogallery.NewInt(koogallery.FlagAdd)})
	var ce *simulator.CallError
	g.Expect(errors.As(err, &ce)).To(BeTrue())
	g.Expect(ce.Attempts).To(Equal(simulator.KitCalls))
	g.Expect(flaky.calls.Load()).To(BeEquivalentTo(simulator.KitCalls))
}

// An older add and a newer delete of the same users, sent at the same time, leave the users
// deleted whichever lands first; a newer add and an older delete leave them stored.
func TestKitConcurrentAddAndDeleteFollowSyncTime(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id, ns := inst.Spec.InstanceID, inst.Status.Namespace
	t0 := time.Now().Add(-time.Minute)
	send := func(app string, flag int, at time.Time, users koogallery.UserList) koogallery.Reply {
		return kitSend(g, &koogallery.AuthSyncRequest{KitCommon: kitAt(id, time.Now()), TenantID: "T", AppID: app, UserList: users,
			CurrentSyncTime: koogallery.FormatKitTime(at), Flag: koogallery.NewInt(flag)})
	}
	var users koogallery.UserList
	for i := range 40 {
		users = append(users, kitUser(fmt.Sprintf("user%02d", i), "D"))
	}
	for round := range 3 {
		older, newer := t0.Add(time.Duration(2*round)*time.Second), t0.Add(time.Duration(2*round+1)*time.Second)
		var wg sync.WaitGroup
		codes := make([]string, 4)
		for i, c := range []struct {
			app  string
			flag int
			at   time.Time
		}{
			{"GONE", koogallery.FlagAdd, older}, {"GONE", koogallery.FlagRevoke, newer},
			{"KEPT", koogallery.FlagRevoke, older}, {"KEPT", koogallery.FlagAdd, newer},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = send(c.app, c.flag, c.at, users).ResultCode
			}()
		}
		wg.Wait()
		g.Expect(codes).To(HaveEach(koogallery.ResultSuccess))
		g.Expect(entriesWith(g, ns, "users", "appId", "GONE")).To(BeEmpty(), "round %d", round)
		g.Expect(entriesWith(g, ns, "users", "appId", "KEPT")).To(HaveLen(len(users)), "round %d", round)
	}
}
