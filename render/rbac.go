package render

import (
	"errors"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Policy is what the platform team allows plans to do beyond the tenant's own objects. It comes
// from the manager's flags, not from plans, so a plan author cannot widen it.
type Policy struct {
	// BindableClusterRoles are the ClusterRoles a plan's RoleBindings may name. The manager must
	// hold `bind` on exactly these (the chart's tenantRBAC.bindableClusterRoles grants it).
	BindableClusterRoles []string
}

// ErrRBAC means a plan's Role or RoleBinding would grant more than the operator may give.
var ErrRBAC = errors.New("not allowed")

// TenantRule is one permission the operator holds on a tenant's namespaced objects. The
// manager's ClusterRole (generated from the markers in controllers/instance) grants these and
// no more in tenant namespaces; test/packaging checks that it grants at least these.
type TenantRule struct {
	Group     string
	Resources []string
}

// TenantVerbs are the verbs the operator holds on every TenantRules resource.
var TenantVerbs = []string{"get", "list", "watch", "create", "patch", "delete"}

// TenantRules are the kinds a plan may render, as resources. A plan's Role may grant only
// TenantVerbs on these: the API server refuses to let the operator create a Role that grants
// what the operator does not hold itself (it has no `escalate`), and this check says so while
// rendering, naming the object, rather than at apply time.
var TenantRules = []TenantRule{
	{Group: "", Resources: []string{"configmaps", "limitranges", "persistentvolumeclaims", "resourcequotas", "secrets", "serviceaccounts", "services"}},
	{Group: "apps", Resources: []string{"deployments", "statefulsets"}},
	{Group: "autoscaling", Resources: []string{"horizontalpodautoscalers"}},
	{Group: "batch", Resources: []string{"cronjobs", "jobs"}},
	{Group: "networking.k8s.io", Resources: []string{"ingresses", "networkpolicies"}},
	{Group: "policy", Resources: []string{"poddisruptionbudgets"}},
	{Group: "rbac.authorization.k8s.io", Resources: []string{"rolebindings", "roles"}},
}

// checkRBAC refuses a Role whose rules the operator does not hold and a RoleBinding that binds
// anything but the plan's own Roles or an allowed ClusterRole, or binds it to anyone but a
// ServiceAccount of the tenant namespace. roles are the names of the Roles the plan renders.
func checkRBAC(obj *unstructured.Unstructured, namespace string, roles []string, policy Policy) error {
	if obj.GroupVersionKind().Group != rbacv1.GroupName {
		return nil
	}
	switch obj.GetKind() {
	case "Role":
		role := &rbacv1.Role{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, role); err != nil {
			return fmt.Errorf("%w: Role %q is not a valid Role", ErrInvalidObject, obj.GetName())
		}
		for i, rule := range role.Rules {
			if err := coveredByTenantRules(rule); err != nil {
				return fmt.Errorf("%w: Role %q rule %d: %w", ErrRBAC, role.Name, i, err)
			}
		}
	case "RoleBinding":
		rb := &rbacv1.RoleBinding{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, rb); err != nil {
			return fmt.Errorf("%w: RoleBinding %q is not a valid RoleBinding", ErrInvalidObject, obj.GetName())
		}
		return checkRoleBinding(rb, namespace, roles, policy)
	}
	return nil
}

func checkRoleBinding(rb *rbacv1.RoleBinding, namespace string, roles []string, policy Policy) error {
	ref := rb.RoleRef
	switch {
	case ref.APIGroup != rbacv1.GroupName:
		return fmt.Errorf("%w: RoleBinding %q: roleRef.apiGroup must be %s", ErrRBAC, rb.Name, rbacv1.GroupName)
	case ref.Kind == "Role" && !slices.Contains(roles, ref.Name):
		return fmt.Errorf("%w: RoleBinding %q binds Role %q, which the plan does not render", ErrRBAC, rb.Name, ref.Name)
	case ref.Kind == "ClusterRole" && !slices.Contains(policy.BindableClusterRoles, ref.Name):
		return fmt.Errorf("%w: RoleBinding %q binds ClusterRole %q, which is not in the operator's --tenant-bindable-clusterroles", ErrRBAC, rb.Name, ref.Name)
	case ref.Kind != "Role" && ref.Kind != "ClusterRole":
		return fmt.Errorf("%w: RoleBinding %q: roleRef.kind must be Role or ClusterRole", ErrRBAC, rb.Name)
	}
	for i, s := range rb.Subjects {
		if s.Kind != rbacv1.ServiceAccountKind || (s.Namespace != "" && s.Namespace != namespace) {
			return fmt.Errorf("%w: RoleBinding %q subject %d: only ServiceAccounts of the tenant namespace may be bound", ErrRBAC, rb.Name, i)
		}
	}
	return nil
}

// coveredByTenantRules reports why rule grants something outside TenantRules, or nil.
func coveredByTenantRules(rule rbacv1.PolicyRule) error {
	if len(rule.NonResourceURLs) > 0 {
		return errors.New("nonResourceURLs cannot be granted")
	}
	for _, verb := range rule.Verbs {
		if !slices.Contains(TenantVerbs, verb) {
			return fmt.Errorf("verb %q is not one the operator holds (%v)", verb, TenantVerbs)
		}
	}
	for _, group := range rule.APIGroups {
		for _, res := range rule.Resources {
			if !tenantResource(group, res) {
				return fmt.Errorf("resource %q of group %q is not one the operator manages", res, group)
			}
		}
	}
	return nil
}

func tenantResource(group, resource string) bool {
	for _, r := range TenantRules {
		if r.Group == group && slices.Contains(r.Resources, resource) {
			return true
		}
	}
	return false
}

// renderedRoles are the names of the Roles among objs.
func renderedRoles(objs []*unstructured.Unstructured) []string {
	var names []string
	for _, o := range objs {
		if o.GroupVersionKind().Group == rbacv1.GroupName && o.GetKind() == "Role" {
			names = append(names, o.GetName())
		}
	}
	return names
}
