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
	sizes := make([]int, UserShards)
	counts := make([]int, UserShards)
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
		for s, entries := range shards {
			for k, v := range entries {
				sizes[s] += len(k) + len(*v)
				counts[s]++
			}
		}
	}
	largest, smallest, total := 0, 1<<30, 0
	for s := range sizes {
		largest, smallest, total = max(largest, sizes[s]), min(smallest, counts[s]), total+counts[s]
	}
	t.Logf("10000 maximal users: largest shard %d bytes, fewest users in a shard %d", largest, smallest)
	if total != 10000 || largest > 700<<10 || smallest == 0 {
		t.Errorf("total %d, largest shard %d bytes, smallest %d users", total, largest, smallest)
	}
}

func TestDeleteAndRevokeRemove(t *testing.T) {
	for _, flag := range []int{koogallery.FlagDelete, koogallery.FlagRevoke} {
		req := &koogallery.AuthSyncRequest{TenantID: "T", AppID: "A", Flag: koogallery.NewInt(flag),
			UserList: koogallery.UserList{{UserName: "u1"}, {UserName: "u2"}}}
		shards, err := userShardEntries(req)
		if err != nil {
			t.Fatal(err)
		}
		for _, entries := range shards {
			for k, v := range entries {
				if v != nil {
					t.Errorf("flag %d: entry %s is set, want removed", flag, k)
				}
			}
		}
	}
}
