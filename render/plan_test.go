package render_test

import (
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

var shortHash = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestPlanHash(t *testing.T) {
	base := basicPlan(t)
	baseHash := render.PlanHash(base)
	if !shortHash.MatchString(baseHash) {
		t.Fatalf("hash %q is not 16 hex characters", baseHash)
	}

	t.Run("stable across map order", func(t *testing.T) {
		// Maps built in opposite insertion orders, hashed repeatedly: Go randomises iteration.
		keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
		forward, backward := base.DeepCopy(), base.DeepCopy()
		forward.Spec.Values, backward.Spec.Values = map[string]string{}, map[string]string{}
		for i := range keys {
			forward.Spec.Values[keys[i]] = keys[i]
			backward.Spec.Values[keys[len(keys)-1-i]] = keys[len(keys)-1-i]
		}
		want := render.PlanHash(forward)
		for range 20 {
			if got := render.PlanHash(backward); got != want {
				t.Fatalf("hash changed with map order: %s vs %s", got, want)
			}
		}
	})

	t.Run("equal specs decoded separately", func(t *testing.T) {
		if got := render.PlanHash(basicPlan(t)); got != baseHash {
			t.Fatalf("got %s, want %s", got, baseHash)
		}
	})

	unchanged := []struct {
		name   string
		mutate func(p *v1alpha1.MarketplacePlan)
	}{
		{"name", func(p *v1alpha1.MarketplacePlan) { p.Name = "renamed" }},
		{"labels", func(p *v1alpha1.MarketplacePlan) { p.Labels = map[string]string{"a": "b"} }},
		{"an equal quantity written differently", func(p *v1alpha1.MarketplacePlan) {
			p.Spec.Quota["requests.memory"] = resource.MustParse("1024Mi") // 1Gi in the sample
		}},
		{"status", func(p *v1alpha1.MarketplacePlan) {
			p.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}
		}},
	}
	for _, tc := range unchanged {
		t.Run("ignores "+tc.name, func(t *testing.T) {
			p := base.DeepCopy()
			tc.mutate(p)
			if got := render.PlanHash(p); got != baseHash {
				t.Fatalf("hash changed: %s vs %s", got, baseHash)
			}
		})
	}

	changed := []struct {
		name   string
		mutate func(p *v1alpha1.MarketplacePlan)
	}{
		{"value", func(p *v1alpha1.MarketplacePlan) { p.Spec.Values["replicas"] = "2" }},
		{"new value", func(p *v1alpha1.MarketplacePlan) { p.Spec.Values["extra"] = "" }},
		{"quota", func(p *v1alpha1.MarketplacePlan) { p.Spec.Quota["pods"] = resource.MustParse("11") }},
		{"limits", func(p *v1alpha1.MarketplacePlan) { p.Spec.Limits = nil }},
		{"manifest text", func(p *v1alpha1.MarketplacePlan) { p.Spec.Manifests[0].Template += "\n" }},
		{"manifest order", func(p *v1alpha1.MarketplacePlan) {
			p.Spec.Manifests[0], p.Spec.Manifests[1] = p.Spec.Manifests[1], p.Spec.Manifests[0]
		}},
		{"appInfo", func(p *v1alpha1.MarketplacePlan) { p.Spec.AppInfo.AdminURL = "" }},
		{"backup", func(p *v1alpha1.MarketplacePlan) { p.Spec.Backup = &v1alpha1.BackupSpec{JobTemplate: "x"} }},
		{"skus", func(p *v1alpha1.MarketplacePlan) { p.Spec.SKUs = p.Spec.SKUs[:1] }},
		{"display name", func(p *v1alpha1.MarketplacePlan) { p.Spec.DisplayName = "other" }},
	}
	seen := map[string]string{baseHash: "base"}
	for _, tc := range changed {
		t.Run("changes with "+tc.name, func(t *testing.T) {
			p := base.DeepCopy()
			tc.mutate(p)
			got := render.PlanHash(p)
			if other, dup := seen[got]; dup {
				t.Fatalf("hash %s equals that of %s", got, other)
			}
			seen[got] = tc.name
		})
	}
}

func TestValidatePlan(t *testing.T) {
	withBackup := func(p *v1alpha1.MarketplacePlan, template string) *v1alpha1.MarketplacePlan {
		p.Spec.Backup = &v1alpha1.BackupSpec{JobTemplate: template}
		return p
	}
	withAppInfo := func(p *v1alpha1.MarketplacePlan, front string) *v1alpha1.MarketplacePlan {
		p.Spec.AppInfo.FrontEndURL = front
		return p
	}
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	cases := []struct {
		name      string
		plan      *v1alpha1.MarketplacePlan
		wantCount int      // number of problems reported
		contains  []string // fragments of the joined message
	}{
		{name: "basic sample", plan: basicPlan(t)},
		{name: "pro sample", plan: proPlan(t)},
		{name: "SKU-dependent template renders for the first SKU", plan: testPlan("m", `apiVersion: v1
kind: ConfigMap
metadata: {name: '{{ if eq .SKU "S1" }}c{{ else }}{{ .Values.unknown }}{{ end }}'}
`)},
		{name: "no manifests", plan: testPlan(), wantCount: 1, contains: []string{"no manifests"}},
		{name: "syntax error", plan: testPlan("m", "{{ .Name "), wantCount: 1, contains: []string{"template m:"}},
		{name: "unknown value", plan: testPlan("m", "metadata: {name: '{{ .Values.missing }}'}"), wantCount: 1, contains: []string{"template m:", "missing"}},
		{name: "forbidden kind", plan: testPlan("m", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: c}\n"),
			wantCount: 1, contains: []string{"template m:", "ClusterRole"}},
		{name: "bad front end URL", plan: withAppInfo(testPlan("m", cm), "/relative"), wantCount: 1, contains: []string{"appInfo.frontEndUrl"}},
		{name: "bad backup", plan: withBackup(testPlan("m", cm), "{{ .Values.bucket }}"), wantCount: 1, contains: []string{"backup.jobTemplate", "bucket"}},
		{name: "every problem at once", plan: withBackup(withAppInfo(testPlan("a", "{{ .Nope }}", "b", cm, "c", "kind: Node"), "x"), "{{"),
			wantCount: 4, contains: []string{"template a:", "template c:", "appInfo.frontEndUrl", "backup.jobTemplate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := render.ValidatePlan(tc.plan, render.Policy{})
			if tc.wantCount == 0 {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want problems, got none")
			}
			if got := countProblems(err); got != tc.wantCount {
				t.Errorf("%d problems reported, want %d: %v", got, tc.wantCount, err)
			}
			for _, frag := range tc.contains {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("%q does not mention %q", err, frag)
				}
			}
		})
	}
}

// countProblems counts the leaves of a tree of joined errors.
func countProblems(err error) int {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return 1
	}
	n := 0
	for _, e := range joined.Unwrap() {
		n += countProblems(e)
	}
	return n
}
