package render_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestNamespaceName(t *testing.T) {
	long63a := strings.Repeat("a", 62) + "1"
	long63b := strings.Repeat("a", 62) + "2"
	hyphenAtCut := strings.Repeat("b", 47) + "-" + strings.Repeat("c", 15) // '-' where the prefix is cut
	cases := []struct {
		name     string
		instance string
		want     string // exact result, when the name is not hashed
		hashed   bool
	}{
		{name: "short", instance: "cs2211181819b4lvs-000001", want: "mpi-cs2211181819b4lvs-000001"},
		{name: "59 characters fit exactly", instance: strings.Repeat("x", 59), want: "mpi-" + strings.Repeat("x", 59)},
		{name: "60 characters are hashed", instance: strings.Repeat("x", 60), hashed: true},
		{name: "63 characters are hashed", instance: long63a, hashed: true},
		{name: "hyphen at the cut is trimmed", instance: hyphenAtCut, hashed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := render.NamespaceName(tc.instance)
			if got != render.NamespaceName(tc.instance) {
				t.Fatal("not deterministic")
			}
			if len(got) > 63 || !dnsLabel.MatchString(got) {
				t.Fatalf("%q is not a valid namespace name", got)
			}
			if strings.Contains(got, "--") {
				t.Errorf("%q has a double hyphen", got)
			}
			if !tc.hashed {
				if got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
				return
			}
			// Readable: the prefix of the plain name survives; unique: a hash suffix follows.
			if !strings.HasPrefix(got, ("mpi-" + tc.instance)[:40]) {
				t.Errorf("%q lost the readable prefix of %q", got, tc.instance)
			}
			if strings.HasPrefix("mpi-"+tc.instance, got) {
				t.Errorf("%q is a plain truncation", got)
			}
		})
	}
	t.Run("distinct long names stay distinct", func(t *testing.T) {
		a, b := render.NamespaceName(long63a), render.NamespaceName(long63b)
		if a == b {
			t.Fatalf("%q and %q share namespace %q", long63a, long63b, a)
		}
	})
}

func TestLabels(t *testing.T) {
	got := render.Labels(testInstance("tenant-a"))
	want := map[string]string{
		"saas.marketplace.dev/instance": "tenant-a",
		"app.kubernetes.io/managed-by":  "marketplace-operator",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	got["x"] = "y"
	if _, leaked := render.Labels(testInstance("tenant-a"))["x"]; leaked {
		t.Fatal("Labels returns a shared map")
	}
}

func TestAdminUserName(t *testing.T) {
	cases := []struct {
		name, set, want string
	}{
		{"defaulted", "", "admin"},
		{"from the plan", "root@example", "root@example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := &v1alpha1.MarketplacePlan{}
			plan.Spec.AppInfo.AdminUserName = tc.set
			if got := render.AdminUserName(plan); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
