package packaging

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/marketplace-operator/marketplace-operator/render"
)

// The generated ClusterRole grants every permission that render.TenantRules says plans may
// grant (so a plan's Role that passes rendering is one the API server lets the operator
// create), and none of the verbs that lead past RBAC.
func TestManagerRoleMatchesTenantRules(t *testing.T) {
	t.Parallel()
	var role rbacv1.ClusterRole
	b, err := os.ReadFile(filepath.Join(repo(t), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &role); err != nil {
		t.Fatal(err)
	}
	holds := func(group, resource, verb string) bool {
		for _, r := range role.Rules {
			if len(r.ResourceNames) == 0 && slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}
	for _, tr := range render.TenantRules {
		for _, res := range tr.Resources {
			for _, verb := range render.TenantVerbs {
				if !holds(tr.Group, res, verb) {
					t.Errorf("render.TenantRules lets plans grant %s %s/%s, which config/rbac/role.yaml does not", verb, tr.Group, res)
				}
			}
		}
	}
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v == "*" || v == "bind" || v == "escalate" || v == "impersonate" {
				t.Errorf("the manager's ClusterRole grants %q on %v", v, r.Resources)
			}
		}
		if slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") || len(r.NonResourceURLs) > 0 {
			t.Errorf("the manager's ClusterRole has a wildcard or non-resource rule: %+v", r)
		}
	}
}

// Every RBAC marker sits in a comment block that says why the manager needs it.
func TestRBACMarkersSayWhy(t *testing.T) {
	t.Parallel()
	root := repo(t)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := os.Open(path) //nolint:gosec // the repository's own files
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		var block []string // the comment lines above and including the current line
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "//") {
				block = block[:0]
				continue
			}
			block = append(block, line)
			if !strings.HasPrefix(line, "// +kubebuilder:rbac:") {
				continue
			}
			explained := slices.ContainsFunc(block, func(l string) bool {
				return !strings.HasPrefix(l, "// +") && len(strings.TrimSpace(strings.TrimPrefix(l, "//"))) > 0
			})
			if !explained {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: an RBAC marker with no comment saying why: %s", rel, n, line)
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The chart ships the same admission policies as config/admission, under its own names, and the
// manager's `bind` only on the ClusterRoles it is told.
func TestHelmAccess(t *testing.T) {
	t.Parallel()
	kubectl, _ := tools(t)
	kust := decode(t, run(t, kubectl, "kustomize", "config/default"))
	objs := chartRender(t, chartExistingSecret...)
	user := "system:serviceaccount:" + chartNamespace + ":" + chartFullname
	for _, name := range []string{"manager-scope", "tenant-namespace-labels"} {
		h := chartDecode[admissionregistrationv1.ValidatingAdmissionPolicy](t, objs, "ValidatingAdmissionPolicy/"+chartFullname+"-"+name)
		hSpec, err := yaml.Marshal(normalizeYAML(t, objs["ValidatingAdmissionPolicy/"+chartFullname+"-"+name]).(map[string]any)["spec"])
		if err != nil {
			t.Fatal(err)
		}
		k := kust.get(t, "ValidatingAdmissionPolicy", "marketplace-operator-"+name)
		kSpec, err := yaml.Marshal(k.Object["spec"])
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(string(kSpec), "system:serviceaccount:marketplace-operator-system:marketplace-operator-controller-manager", user)
		expectEqual(t, "policy "+name, normalizeYAML(t, hSpec), normalizeYAML(t, []byte(want)))
		hb := chartDecode[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, objs, "ValidatingAdmissionPolicyBinding/"+chartFullname+"-"+name)
		if hb.Spec.PolicyName != h.Name || !slices.Equal(hb.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
			t.Errorf("binding %s: %+v", hb.Name, hb.Spec)
		}
	}
	if b := chartKinds(objs, "ClusterRoleBinding"); len(b) != 1 {
		t.Errorf("ClusterRoleBindings %v, want only the manager's", b)
	}

	off := chartRender(t, append([]string{"admissionPolicies.enabled=false"}, chartExistingSecret...)...)
	if p := chartKinds(off, "ValidatingAdmissionPolicy"); len(p) != 0 {
		t.Errorf("admissionPolicies.enabled=false renders %v", p)
	}

	bind := chartRender(t, append([]string{"tenantRBAC.bindableClusterRoles={tenant-reader,view}"}, chartExistingSecret...)...)
	cr := chartDecode[rbacv1.ClusterRole](t, bind, "ClusterRole/"+chartFullname+"-tenant-bind")
	want := []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"},
		ResourceNames: []string{"tenant-reader", "view"}}}
	expectEqual(t, "tenant-bind rules", cr.Rules, want)
	crb := chartDecode[rbacv1.ClusterRoleBinding](t, bind, "ClusterRoleBinding/"+chartFullname+"-tenant-bind")
	if crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Name != chartFullname {
		t.Errorf("tenant-bind binding %+v", crb)
	}
	d := chartDecode[appsv1.Deployment](t, bind, "Deployment/"+chartFullname)
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--tenant-bindable-clusterroles=tenant-reader,view") {
		t.Errorf("args %v lack --tenant-bindable-clusterroles", d.Spec.Template.Spec.Containers[0].Args)
	}
}

func normalizeYAML(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
