package webhook

import (
	"fmt"
	"strings"
	"testing"

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
