package webhook

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

func TestEntryKeyDeterministicAndValid(t *testing.T) {
	k1, s1 := entryKey(UserShards, "T1", "APP", "alice@example.com")
	k2, s2 := entryKey(UserShards, "T1", "APP", "alice@example.com")
	if k1 != k2 || s1 != s2 {
		t.Fatal("not deterministic")
	}
	// The separator keeps ("ab","c") and ("a","bc") apart.
	if k3, _ := entryKey(UserShards, "T1A", "PP", "alice@example.com"); k3 == k1 {
		t.Error("identities collide")
	}
	if len(k1) != 32 || strings.Trim(k1, "0123456789abcdef") != "" || s1 < 0 || s1 >= UserShards {
		t.Errorf("key %q shard %d", k1, s1)
	}
}

// 10 000 users with every field at its maximum length spread over the shards without any shard
// nearing the API server's 1 MiB object limit.
func TestUserShardSizing(t *testing.T) {
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	sizes := map[string]int{}
	counts := map[string]int{}
	for batch := 0; batch < 20; batch++ {
		req := &koogallery.AuthSyncRequest{TenantID: long(64, "T"), AppID: long(64, "A"), CurrentSyncTime: "20260301120000000",
			Flag: koogallery.NewInt(koogallery.FlagAdd)}
		for i := 0; i < 500; i++ {
			n := batch*500 + i
			req.UserList = append(req.UserList, koogallery.User{
				UserName: fmt.Sprintf("%064d", n), Name: long(64, "名"), OrgCode: long(64, "o"), Position: long(255, "p"),
				EmployeeCode: long(64, "e"), EmployeeType: "4", Role: "admin", Enable: "false", Mobile: long(32, "1"),
				Email: long(128, "m"), WorkPlace: long(255, "w"),
			})
		}
		shards, err := userShardEntries(req)
		if err != nil {
			t.Fatal(err)
		}
		for obj, entries := range shards {
			for _, en := range entries {
				sizes[obj.name] += len(en.key) + len(en.value)
				counts[obj.name]++
			}
		}
	}
	largest, smallest, total := 0, 1<<30, 0
	for name := range sizes {
		largest, smallest, total = max(largest, sizes[name]), min(smallest, counts[name]), total+counts[name]
	}
	t.Logf("10000 maximal users: largest shard %d bytes, fewest users in a shard %d", largest, smallest)
	if len(sizes) != UserShards || total != 10000 || largest > 700<<10 || smallest == 0 {
		t.Errorf("%d shards, total %d, largest shard %d bytes, smallest %d users", len(sizes), total, largest, smallest)
	}
}

func TestSyncOrderRules(t *testing.T) {
	user := kitEntity{kind: entityUser, tenant: "T", app: "A", name: "u"}
	b := tombs{at: map[string]string{
		tombKey(entityUser, "T", "A", "u"): "20260301120000000",
		tombKey(entityApp, "T", "B"):       "20260301130000000",
		tombKey(entityTree, "U"):           "20260301140000000",
	}, floor: "20260101000000000"}
	dept := kitEntity{kind: entityOrg, tenant: "U", name: "d"}
	for _, tc := range []struct {
		name           string
		e              kitEntity
		t, stored      string
		hasStored, win bool
	}{
		{"older than the user's delete", user, "20260301110000000", "", false, false},
		{"as old as the user's delete", user, "20260301120000000", "", false, false},
		{"newer than the user's delete", user, "20260301120000001", "", false, true},
		{"older than its app's delete", kitEntity{kind: entityUser, tenant: "T", app: "B", name: "v"}, "20260301125959999", "", false, false},
		{"another app's user", kitEntity{kind: entityUser, tenant: "T", app: "C", name: "u"}, "20260301110000000", "", false, true},
		{"older than the stored record", kitEntity{kind: entityUser, tenant: "T", app: "C", name: "u"}, "20260301110000000", "20260301110000001", true, false},
		{"as old as the stored record", kitEntity{kind: entityUser, tenant: "T", app: "C", name: "u"}, "20260301110000000", "20260301110000000", true, true},
		{"unknown and older than the floor", kitEntity{kind: entityOrg, tenant: "T", name: "o"}, "20251231000000000", "", false, false},
		{"stored and older than the floor", kitEntity{kind: entityOrg, tenant: "T", name: "o"}, "20251231000000000", "20251230000000000", true, true},
		{"older than its tenant's full tree", dept, "20260301135959999", "", false, false},
		{"stored, older than its tenant's full tree", dept, "20260301135959999", "20260301120000000", true, false},
		{"as old as its tenant's full tree", dept, "20260301140000000", "", false, true},
		{"a user of a tenant with a full tree", kitEntity{kind: entityUser, tenant: "U", app: "A", name: "d"}, "20260301110000000", "", false, true},
	} {
		if got := b.admits(tc.e, tc.t, tc.stored, tc.hasStored); got != tc.win {
			t.Errorf("%s: admits %v, want %v", tc.name, got, tc.win)
		}
	}
}

func TestTombstonesBoundedWithFloor(t *testing.T) {
	next := map[string]string{tombFloorKey: "20250101000000000"}
	for i := range MaxKitTombstones + 10 {
		next[fmt.Sprintf("%032x", i)] = fmt.Sprintf("2026%013d", i)
	}
	changes := map[string]*string{}
	evictOldest(next, changes)
	evicted := 0
	for k, v := range changes {
		if v == nil {
			evicted++
			if next[k] > *changes[tombFloorKey] {
				t.Errorf("evicted %s at %s, after the floor %s", k, next[k], *changes[tombFloorKey])
			}
		}
	}
	kept := MaxKitTombstones + 10 - evicted
	if kept != MaxKitTombstones*7/8 || *changes[tombFloorKey] != fmt.Sprintf("2026%013d", evicted-1) {
		t.Errorf("kept %d, floor %s", kept, *changes[tombFloorKey])
	}
	small := map[string]string{"a": "1"}
	changes = map[string]*string{}
	if evictOldest(small, changes); len(changes) != 0 {
		t.Errorf("evicted below the bound: %v", changes)
	}
}

// orgRec is the stored record of a department synced at at.
func orgRec(tenant, code, parent, at string) string {
	v, _ := marshal(orgRecord{TenantID: tenant, OrgInfo: koogallery.OrgInfo{OrgCode: code, OrgName: code, ParentCode: parent}, SyncTime: at})
	return *v
}

func TestSweepRemovesCoveredAndUnlinksChildren(t *testing.T) {
	data := map[string]string{
		"gone":  orgRec("T", "P", "", "20260301100000000"),
		"child": orgRec("T", "C", "P", "20260301100000000"),
		"later": orgRec("T", "L", "P", "20260301130000000"),
		"other": orgRec("T", "O", "X", "20260301100000000"),
	}
	b := tombs{at: map[string]string{tombKey(entityOrg, "T", "P"): "20260301120000000"}}
	changes := sweepEntries(orgShard(0), b)(data)
	if len(changes) != 2 || changes["gone"] != nil {
		t.Fatalf("changes %v", changes)
	}
	if v := changes["child"]; v == nil || strings.Contains(*v, "parentCode") {
		t.Errorf("child not unlinked: %v", v)
	}
}

// A full department tree removes the departments of its tenant synced before it and keeps those
// as old as it (the ones it listed) and those of other tenants.
func TestSweepRemovesDepartmentsOlderThanTheTree(t *testing.T) {
	data := map[string]string{
		"before": orgRec("T", "B", "", "20260301110000000"),
		"listed": orgRec("T", "L", "", "20260301120000000"),
		"after":  orgRec("T", "A", "", "20260301130000000"),
		"other":  orgRec("O", "B", "", "20260301110000000"),
	}
	b := tombs{at: map[string]string{tombKey(entityTree, "T"): "20260301120000000"}}
	changes := sweepEntries(orgShard(0), b)(data)
	if v, ok := changes["before"]; len(changes) != 1 || !ok || v != nil {
		t.Errorf("changes %v, want only the department synced before the tree removed", changes)
	}
}

func TestServiceAccountNamespace(t *testing.T) {
	for user, want := range map[string]string{
		"system:serviceaccount:marketplace-operator-system:marketplace-operator-controller-manager": "marketplace-operator-system",
		"system:serviceaccount::name": "",
		"system:serviceaccount:ns":    "",
		"kubernetes-admin":            "",
		"":                            "",
	} {
		if got, ok := serviceAccountNamespace(user); got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", user, got, ok, want)
		}
	}
}

// A sweep deciding on this replica's copy of a shard that misses an entry written since (two
// concurrent calls put their copies in the other order than their writes landed) still removes
// that entry: a decision to write nothing is made again on the object as read.
func TestSweepNotFooledByStaleCopy(t *testing.T) {
	ctx := context.Background()
	user := kitEntity{kind: entityUser, tenant: "T", app: "GONE", name: "u"}
	key, shard := entryKey(UserShards, user.tenant, user.app, user.name)
	v, err := marshal(userRecord{TenantID: user.tenant, AppID: user.app, User: koogallery.User{UserName: user.name}, CurrentSyncTime: "20260301100000000"})
	if err != nil {
		t.Fatal(err)
	}
	obj := userShard(shard)
	written := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: obj.name}, Data: map[string]string{key: *v}}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(written).Build()
	k := &kitStore{client: c, reader: c}
	stale := written.DeepCopy()
	stale.Data, stale.ResourceVersion = map[string]string{}, "1"
	k.copies.put("ns", obj, stale)

	b := tombs{at: map[string]string{user.tomb(): "20260301120000000"}}
	if err := k.sweep(ctx, kitScope{ns: "ns"}, b, []kitObject{obj}); err != nil {
		t.Fatal(err)
	}
	got := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(written), got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Data[key]; ok {
		t.Errorf("the revoked user is still stored: %v", got.Data)
	}
}
