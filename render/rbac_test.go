package render_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestWorkloadRBAC(t *testing.T) {
	role := func(name, rules string) string {
		return "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: " + name + "}\nrules:\n" + rules
	}
	binding := func(name, roleKind, roleName, subjects string) string {
		return "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: " + name + "}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: " + roleKind + ", name: " + roleName + "}\nsubjects:\n" + subjects
	}
	appSA := "- {kind: ServiceAccount, name: app}\n"
	readConfig := "- {apiGroups: [''], resources: [configmaps, secrets], verbs: [get, list, watch]}\n"
	policy := render.Policy{BindableClusterRoles: []string{"tenant-app-reader"}}
	cases := []struct {
		name      string
		manifests []string
		contains  string // "" means allowed
	}{
		{"a Role within the tenant kinds, bound to the tenant's ServiceAccount",
			[]string{"role", role("app", readConfig), "bind", binding("app", "Role", "app", appSA+"- {kind: ServiceAccount, name: worker, namespace: mpi-t1}\n")}, ""},
		{"an allowed ClusterRole", []string{"bind", binding("reader", "ClusterRole", "tenant-app-reader", appSA)}, ""},
		{"a wildcard verb", []string{"role", role("all", "- {apiGroups: [''], resources: [configmaps], verbs: ['*']}\n")},
			`template role: not allowed: Role "all" rule 0: verb "*"`},
		{"a wildcard resource", []string{"role", role("all", "- {apiGroups: [''], resources: ['*'], verbs: [get]}\n")},
			`resource "*" of group ""`},
		{"a kind the operator does not manage", []string{"role", role("exec", "- {apiGroups: [''], resources: [pods/exec], verbs: [create]}\n")},
			`resource "pods/exec"`},
		{"the tenant's own namespace", []string{"role", role("ns", "- {apiGroups: [''], resources: [namespaces], verbs: [patch]}\n")},
			`resource "namespaces"`},
		{"bind", []string{"role", role("b", "- {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [bind, escalate]}\n")},
			`verb "bind"`},
		{"non-resource URLs", []string{"role", role("u", "- {nonResourceURLs: [/metrics], verbs: [get]}\n")}, "nonResourceURLs"},
		{"a ClusterRole not listed", []string{"bind", binding("admin", "ClusterRole", "cluster-admin", appSA)},
			`binds ClusterRole "cluster-admin", which is not in the operator's --tenant-bindable-clusterroles`},
		{"a Role the plan does not render", []string{"bind", binding("other", "Role", "someone-elses", appSA)},
			`binds Role "someone-elses", which the plan does not render`},
		{"a user", []string{"role", role("app", readConfig), "bind", binding("app", "Role", "app", "- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}\n")},
			"only ServiceAccounts of the tenant namespace"},
		{"a group", []string{"role", role("app", readConfig), "bind", binding("app", "Role", "app", "- {kind: Group, name: 'system:authenticated', apiGroup: rbac.authorization.k8s.io}\n")},
			"only ServiceAccounts of the tenant namespace"},
		{"another namespace's ServiceAccount", []string{"role", role("app", readConfig), "bind", binding("app", "Role", "app", "- {kind: ServiceAccount, name: default, namespace: kube-system}\n")},
			"only ServiceAccounts of the tenant namespace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render.Workload(testInstance("t1"), testPlan(tc.manifests...), policy)
			if tc.contains == "" {
				if err != nil || len(objs) != len(tc.manifests)/2 {
					t.Fatalf("got %d objects, error %v", len(objs), err)
				}
				return
			}
			if !errors.Is(err, render.ErrRBAC) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("error %v, want ErrRBAC containing %q", err, tc.contains)
			}
		})
	}
}
