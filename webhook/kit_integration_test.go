package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

func kitCommon(id string, test bool) koogallery.KitCommon {
	return koogallery.NewKitCommon(id, test, koogallery.FormatKitTime(time.Now()))
}

// kitEntries reads every kit object of one kind in ns and returns the decoded entries.
func kitEntries(g Gomega, ns, data string) []map[string]any {
	var out []map[string]any
	ctx := context.Background()
	sel := client.MatchingLabels{webhook.LabelKitData: data}
	decode := func(v []byte) {
		m := map[string]any{}
		g.Expect(json.Unmarshal(v, &m)).To(Succeed())
		out = append(out, m)
	}
	if data == "applications" {
		list := &corev1.SecretList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns), sel)).To(Succeed())
		for _, s := range list.Items {
			for _, v := range s.Data {
				decode(v)
			}
		}
		return out
	}
	list := &corev1.ConfigMapList{}
	g.Expect(k8s.List(ctx, list, client.InNamespace(ns), sel)).To(Succeed())
	for _, cm := range list.Items {
		for _, v := range cm.Data {
			decode([]byte(v))
		}
	}
	return out
}

func TestKitSyncs(t *testing.T) {
	g := NewWithT(t)
	inst, orderID := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id, ns := inst.Spec.InstanceID, inst.Status.Namespace
	ok := Equal(koogallery.ResultSuccess)

	// tenantSync: add twice (one entry), modify, delete twice.
	tenant := func(flag int, name string) koogallery.Reply {
		return kitSend(g, &koogallery.TenantSyncRequest{KitCommon: kitCommon(id, false), OrderID: orderID, TenantID: "T1",
			TenantCode: "acme", Name: name, DomainName: "acme.example.com", Flag: koogallery.NewInt(flag)})
	}
	g.Expect(tenant(koogallery.FlagAdd, "Acme").ResultCode).To(ok)
	g.Expect(tenant(koogallery.FlagAdd, "Acme").ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "tenants")).To(HaveLen(1))
	g.Expect(tenant(koogallery.FlagModify, "Acme Ltd").ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "tenants")[0]["name"]).To(Equal("Acme Ltd"))
	cm := &corev1.ConfigMap{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: webhook.KitTenantsConfigMap}, cm)).To(Succeed())
	g.Expect(cm.Labels).To(HaveKeyWithValue(saasv1alpha1.LabelInstance, inst.Name))
	g.Expect(cm.OwnerReferences).To(ConsistOf(render.OwnerReference(inst)))
	g.Expect(tenant(koogallery.FlagDelete, "Acme Ltd").ResultCode).To(ok)
	g.Expect(tenant(koogallery.FlagDelete, "Acme Ltd").ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "tenants")).To(BeEmpty())

	// applicationSync: the client secret is decrypted with our RSA key into a Secret.
	secret, err := koogallery.EncryptClientSecret(&rsaKey.PublicKey, "sso-client-secret-42")
	g.Expect(err).NotTo(HaveOccurred())
	app := func(flag int) koogallery.Reply {
		return kitSend(g, &koogallery.ApplicationSyncRequest{KitCommon: kitCommon(id, false), TenantID: "T1", AppID: "APP1",
			ClientID: "client-1", ClientSecret: secret, Flag: koogallery.NewInt(flag)})
	}
	g.Expect(app(koogallery.FlagAdd).ResultCode).To(ok)
	g.Expect(app(koogallery.FlagAdd).ResultCode).To(ok)
	apps := kitEntries(g, ns, "applications")
	g.Expect(apps).To(HaveLen(1))
	g.Expect(apps[0]).To(HaveKeyWithValue("clientSecret", "sso-client-secret-42"))
	bad := kitSend(g, &koogallery.ApplicationSyncRequest{KitCommon: kitCommon(id, false), TenantID: "T1", AppID: "APP2",
		ClientID: "c", ClientSecret: "bm90LWVuY3J5cHRlZA==", Flag: koogallery.NewInt(koogallery.FlagAdd)})
	g.Expect(bad.ResultCode).To(Equal(koogallery.ResultInvalidParam))
	g.Expect(app(koogallery.FlagDelete).ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "applications")).To(BeEmpty())

	// authSync: 10 000 users in 20 calls of 500, sharded; a repeated batch adds nothing; delete
	// and revoke remove.
	start := time.Now()
	batches := make([]koogallery.UserList, 20)
	for i := range 10000 {
		batches[i/500] = append(batches[i/500], koogallery.User{
			UserName: fmt.Sprintf("user%05d@acme.example.com", i), Name: fmt.Sprintf("User %d", i), OrgCode: fmt.Sprintf("D%03d", i%100),
			Role: koogallery.RoleUser, Enable: "true", Email: fmt.Sprintf("user%05d@acme.example.com", i), Mobile: "13800000000",
			Position: "engineer", EmployeeCode: fmt.Sprintf("E%05d", i), EmployeeType: "1", WorkPlace: "Shenzhen",
		})
	}
	// Each batch rewrites every shard: on a loaded machine a call can outlast its deadline and be
	// answered 000005, which KooGallery sends again until it succeeds; so does this test, and a
	// batch sent again (wholly or in part) adds nothing.
	auth := func(flag int, users koogallery.UserList) koogallery.Reply {
		var r koogallery.Reply
		g.Eventually(func() string {
			r = kitSend(g, &koogallery.AuthSyncRequest{KitCommon: kitCommon(id, false), TenantID: "T1", AppID: "APP1",
				UserList: users, CurrentSyncTime: koogallery.FormatKitTime(time.Now()), Flag: koogallery.NewInt(flag)})
			return r.ResultCode
		}).WithTimeout(2 * time.Minute).WithPolling(100 * time.Millisecond).ShouldNot(Equal(koogallery.ResultInternalError))
		return r
	}
	for _, b := range batches {
		g.Expect(auth(koogallery.FlagAdd, b).ResultCode).To(ok)
	}
	t.Logf("10000 users stored in %v", time.Since(start))
	g.Expect(auth(koogallery.FlagAdd, batches[3]).ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "users")).To(HaveLen(10000))
	shards := &corev1.ConfigMapList{}
	g.Expect(k8s.List(context.Background(), shards, client.InNamespace(ns), client.MatchingLabels{webhook.LabelKitData: "users"})).To(Succeed())
	g.Expect(shards.Items).To(HaveLen(webhook.UserShards))
	largest := 0
	for _, s := range shards.Items {
		n := 0
		for k, v := range s.Data {
			n += len(k) + len(v)
		}
		largest = max(largest, n)
	}
	t.Logf("largest user shard: %d bytes", largest)
	g.Expect(largest).To(BeNumerically("<", 256<<10), "shards stay well under the 1 MiB object limit")
	g.Expect(auth(koogallery.FlagDelete, batches[0]).ResultCode).To(ok)
	g.Expect(auth(koogallery.FlagDelete, batches[0]).ResultCode).To(ok)
	g.Expect(auth(koogallery.FlagRevoke, batches[1][:100]).ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "users")).To(HaveLen(9400))

	// singleOrgSync: add, modify, delete twice.
	org := func(flag int, code, name string) koogallery.Reply {
		return kitSend(g, &koogallery.SingleOrgSyncRequest{KitCommon: kitCommon(id, false), TenantID: "T1", OrgCode: code,
			OrgName: name, ParentCode: "ROOT", Flag: koogallery.NewInt(flag)})
	}
	g.Expect(org(koogallery.FlagAdd, "D900", "Sales").ResultCode).To(ok)
	g.Expect(org(koogallery.FlagModify, "D900", "Sales EMEA").ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "departments")).To(ConsistOf(HaveKeyWithValue("orgName", "Sales EMEA")))
	g.Expect(org(koogallery.FlagDelete, "D900", "Sales EMEA").ResultCode).To(ok)
	g.Expect(org(koogallery.FlagDelete, "D900", "Sales EMEA").ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "departments")).To(BeEmpty())

	// allOrgSync replaces the tenant's tree; repeated, it leaves one copy.
	tree := func(n int) koogallery.OrgInfoList {
		var l koogallery.OrgInfoList
		for i := range n {
			l = append(l, koogallery.OrgInfo{OrgCode: fmt.Sprintf("D%03d", i), OrgName: fmt.Sprintf("Dept %d", i), ParentCode: "ROOT"})
		}
		return l
	}
	all := func(l koogallery.OrgInfoList) koogallery.Reply {
		return kitSend(g, &koogallery.AllOrgSyncRequest{KitCommon: kitCommon(id, false), TenantID: "T1", OrgInfoList: l})
	}
	g.Expect(org(koogallery.FlagAdd, "OTHER", "Another tenant's").ResultCode).To(ok)
	g.Expect(kitSend(g, &koogallery.SingleOrgSyncRequest{KitCommon: kitCommon(id, false), TenantID: "T2", OrgCode: "X",
		OrgName: "kept", Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(ok)
	g.Expect(all(tree(300)).ResultCode).To(ok)
	g.Expect(all(tree(300)).ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "departments")).To(HaveLen(301), "300 of T1 (OTHER replaced) and 1 of T2")
	g.Expect(all(tree(120)).ResultCode).To(ok)
	g.Expect(kitEntries(g, ns, "departments")).To(HaveLen(121))

	// Deletes never need the instance; adds do.
	g.Expect(kitSend(g, &koogallery.TenantSyncRequest{KitCommon: kitCommon("no-such-instance", false), TenantID: "T1", TenantCode: "c",
		Name: "n", Flag: koogallery.NewInt(koogallery.FlagDelete)}).ResultCode).To(ok)
	g.Expect(kitSend(g, &koogallery.TenantSyncRequest{KitCommon: kitCommon("no-such-instance", false), TenantID: "T1", TenantCode: "c",
		Name: "n", Flag: koogallery.NewInt(koogallery.FlagAdd)}).ResultCode).To(Equal(koogallery.ResultInstanceNotFound))
}

// Debug kit syncs are verified and answered but store nothing; a debug applicationSync proves
// the client secret decrypts, as KooGallery's debug tool checks.
func TestDebugKitSyncsStoreNothing(t *testing.T) {
	g := NewWithT(t)
	inst, _ := createReady(t, testenv.BasicProduct, testenv.BasicSKU)
	id, ns := inst.Spec.InstanceID, inst.Status.Namespace
	secret, err := koogallery.EncryptClientSecret(&rsaKey.PublicKey, "typed-in-the-debug-tool")
	g.Expect(err).NotTo(HaveOccurred())
	for _, req := range []koogallery.KitRequest{
		&koogallery.TenantSyncRequest{KitCommon: kitCommon(id, true), TenantID: "T", TenantCode: "c", Name: "n", Flag: koogallery.NewInt(1)},
		&koogallery.ApplicationSyncRequest{KitCommon: kitCommon(id, true), TenantID: "T", AppID: "A", ClientID: "c", ClientSecret: secret, Flag: koogallery.NewInt(1)},
		&koogallery.AuthSyncRequest{KitCommon: kitCommon(id, true), TenantID: "T", AppID: "A", CurrentSyncTime: koogallery.FormatKitTime(time.Now()),
			UserList: koogallery.UserList{{UserName: "u", Name: "n", OrgCode: "o", Role: "admin", Enable: "true"}}, Flag: koogallery.NewInt(1)},
		&koogallery.SingleOrgSyncRequest{KitCommon: kitCommon(id, true), TenantID: "T", OrgCode: "o", OrgName: "n", Flag: koogallery.NewInt(1)},
		&koogallery.AllOrgSyncRequest{KitCommon: kitCommon("", true), TenantID: "T", OrgInfoList: koogallery.OrgInfoList{{OrgCode: "o", OrgName: "n"}}},
	} {
		r := kitSend(g, req)
		g.Expect(r.ResultCode).To(Equal(koogallery.ResultSuccess), "%s: %s", req.Kind(), r.ResultMsg)
	}
	bad := kitSend(g, &koogallery.ApplicationSyncRequest{KitCommon: kitCommon(id, true), TenantID: "T", AppID: "A", ClientID: "c",
		ClientSecret: "bm90LWVuY3J5cHRlZA==", Flag: koogallery.NewInt(1)})
	g.Expect(bad.ResultCode).To(Equal(koogallery.ResultInvalidParam))
	cms := &corev1.ConfigMapList{}
	g.Expect(k8s.List(context.Background(), cms, client.InNamespace(ns), client.HasLabels{webhook.LabelKitData})).To(Succeed())
	g.Expect(cms.Items).To(BeEmpty())
	secrets := &corev1.SecretList{}
	g.Expect(k8s.List(context.Background(), secrets, client.InNamespace(ns), client.HasLabels{webhook.LabelKitData})).To(Succeed())
	g.Expect(secrets.Items).To(BeEmpty())
	g.Expect(strings.HasPrefix(ns, "mpi-")).To(BeTrue())
}
