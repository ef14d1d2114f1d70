package security

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/render"
)

var (
	env     *testenv.Env
	admin   client.Client // cluster-admin
	manager client.Client // the manager's ServiceAccount, with the shipped RBAC and policies
	seq     atomic.Int64
)

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		if err := env.InstallAccess(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		admin = env.Client
		var err error
		if manager, err = client.New(env.ManagerConfig, client.Options{Scheme: env.Scheme}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// name is unique per call, so tests share one API server without colliding.
func name(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// tenantNamespace creates, as the manager, a namespace labelled as a tenant's.
func tenantNamespace(t *testing.T) string {
	t.Helper()
	ns := render.Namespace(&saasv1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: name("t")}})
	if err := manager.Create(context.Background(), ns); err != nil {
		t.Fatalf("the manager cannot create a tenant namespace: %v", err)
	}
	return ns.Name
}

// plainNamespace creates, as cluster-admin, a namespace that is nobody's tenant.
func plainNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name("team")}}
	if err := admin.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// writable returns one object of each kind the issue names, in namespace ns.
func writable(ns string) []client.Object {
	meta := metav1.ObjectMeta{Name: "probe", Namespace: ns}
	return []client.Object{
		&corev1.Secret{ObjectMeta: meta, StringData: map[string]string{"k": "v"}},
		&corev1.ConfigMap{ObjectMeta: meta},
		&appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "probe"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "probe"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/probe:1"}}},
			},
		}},
		&rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
		&rbacv1.RoleBinding{ObjectMeta: meta,
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "probe"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: ns}}},
	}
}

func expectForbidden(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: want Forbidden, got %v", what, err)
	}
}

func TestManagerCannotWriteOutsideItsNamespaces(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{metav1.NamespaceSystem, plainNamespace(t)} {
		// The Role exists, so that the RoleBinding below is refused for where it is, not for
		// naming a Role that is not there.
		role := writable(ns)[3]
		if err := admin.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		for _, obj := range writable(ns) {
			kind := fmt.Sprintf("%T", obj)
			expectForbidden(t, "creating "+kind+" in "+ns, manager.Create(ctx, obj))
		}
		// What cluster-admin put there, the manager can neither change nor delete.
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name("admins"), Namespace: ns}}
		if err := admin.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		expectForbidden(t, "patching a ConfigMap in "+ns, manager.Patch(ctx, cm, client.RawPatch(types.MergePatchType, []byte(`{"data":{"x":"y"}}`))))
		expectForbidden(t, "deleting a ConfigMap in "+ns, manager.Delete(ctx, cm))
	}
}

func TestManagerCannotRelabelOrDeleteNamespacesItDoesNotOwn(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{metav1.NamespaceSystem, plainNamespace(t)} {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		for _, patch := range []string{
			`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`,
			`{"metadata":{"labels":{"saas.marketplace.dev/instance":"taken"}}}`,
		} {
			expectForbidden(t, "relabelling namespace "+ns, manager.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch))))
		}
		expectForbidden(t, "deleting namespace "+ns, manager.Delete(ctx, obj))
	}
	unlabelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name(render.NamespacePrefix + "bare")}}
	expectForbidden(t, "creating a namespace without the tenant label", manager.Create(ctx, unlabelled))
}

func TestManagerCannotGrantWhatItDoesNotHold(t *testing.T) {
	ctx := context.Background()
	ns := tenantNamespace(t)
	meta := func() metav1.ObjectMeta { return metav1.ObjectMeta{Name: name("grant"), Namespace: ns} }
	sa := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: ns}}
	for what, obj := range map[string]client.Object{
		"a Role granting everything": &rbacv1.Role{ObjectMeta: meta(),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}},
		"a Role granting pods/exec": &rbacv1.Role{ObjectMeta: meta(),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}}}},
		"a binding of cluster-admin": &rbacv1.RoleBinding{ObjectMeta: meta(), Subjects: sa,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}},
		// admin and edit aggregate these (the aggregation controller does not run here).
		"a binding of system:aggregate-to-admin": &rbacv1.RoleBinding{ObjectMeta: meta(), Subjects: sa,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:aggregate-to-admin"}},
		"a ClusterRoleBinding": &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name("grant")}, Subjects: sa,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}},
	} {
		expectForbidden(t, "creating "+what, manager.Create(ctx, obj))
	}
}

func TestManagerManagesTenantNamespaces(t *testing.T) {
	ctx := context.Background()
	ns := tenantNamespace(t)
	for _, obj := range writable(ns) {
		if err := manager.Create(ctx, obj); err != nil {
			t.Errorf("creating %T in tenant namespace %s: %v", obj, ns, err)
		}
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	patch := `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`
	if err := manager.Patch(ctx, nsObj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Errorf("setting the Pod Security label of tenant namespace %s: %v", ns, err)
	}
	if err := manager.Delete(ctx, nsObj); err != nil {
		t.Errorf("deleting tenant namespace %s: %v", ns, err)
	}
}

// A ClusterRole the platform team lists in --tenant-bindable-clusterroles can be bound once the
// manager holds bind on it by name, as the Helm chart's tenantRBAC.bindableClusterRoles grants;
// no other ClusterRole can.
func TestManagerBindsOnlyClusterRolesItIsGiven(t *testing.T) {
	ctx := context.Background()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name("tenant-app")},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}}
	grant := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name("bind-tenant-app")},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"},
			Verbs: []string{"bind"}, ResourceNames: []string{role.Name}}}}
	grantBinding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: grant.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: grant.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: testenv.ManagerServiceAccount, Namespace: testenv.OperatorNamespace}}}
	for _, o := range []client.Object{role, grant, grantBinding} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ns := tenantNamespace(t)
	binding := func(clusterRole string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name("app"), Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "app", Namespace: ns}}}
	}
	awaitAllowed(t, func() error { return manager.Create(ctx, binding(role.Name), client.DryRunAll) })
	if err := manager.Create(ctx, binding(role.Name)); err != nil {
		t.Errorf("binding the granted ClusterRole %s: %v", role.Name, err)
	}
	expectForbidden(t, "binding ClusterRole system:aggregate-to-edit", manager.Create(ctx, binding("system:aggregate-to-edit")))
	// Still only in tenant namespaces.
	other := binding(role.Name)
	other.Namespace = metav1.NamespaceSystem
	expectForbidden(t, "binding the granted ClusterRole in kube-system", manager.Create(ctx, other))
}

// awaitAllowed retries f while it is refused: the API server's RBAC authorizer learns of a new
// binding from its informers, a moment after the binding is created.
func awaitAllowed(t *testing.T, f func() error) {
	t.Helper()
	NewWithT(t).Eventually(func() bool { return !apierrors.IsForbidden(f()) }).
		WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTrue())
}

func TestTenantNamespaceLabelsAreTheOperators(t *testing.T) {
	ctx := context.Background()
	ns := tenantNamespace(t)
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	merge := func(c client.Client, patch string) error {
		return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch)))
	}
	for _, patch := range []string{
		`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`,
		`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce-version":"v1.20"}}}`,
		`{"metadata":{"labels":{"pod-security.kubernetes.io/audit":null}}}`,
		`{"metadata":{"labels":{"saas.marketplace.dev/instance":null}}}`,
		`{"metadata":{"labels":{"saas.marketplace.dev/instance":"another"}}}`,
	} {
		err := merge(admin, patch)
		expectForbidden(t, "cluster-admin patching "+patch, err)
		if err != nil && !strings.Contains(err.Error(), "are the operator's to set") {
			t.Errorf("the refusal does not say why: %v", err)
		}
	}
	if err := merge(admin, `{"metadata":{"labels":{"team":"billing"}}}`); err != nil {
		t.Errorf("cluster-admin adding an unrelated label: %v", err)
	}
	if err := merge(manager, `{"metadata":{"labels":{"pod-security.kubernetes.io/warn":"restricted"}}}`); err != nil {
		t.Errorf("the manager setting a Pod Security label: %v", err)
	}

	// Nobody else makes a namespace a tenant's, so the label the manager trusts is its own.
	forged := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name("forged"),
		Labels: map[string]string{saasv1alpha1.LabelInstance: "x"}}}
	expectForbidden(t, "cluster-admin creating a namespace with the tenant label", admin.Create(ctx, forged))
	plain := plainNamespace(t)
	err := admin.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plain}},
		client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"saas.marketplace.dev/instance":"x"}}}`)))
	expectForbidden(t, "cluster-admin labelling a namespace as a tenant's", err)
	err = admin.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plain}},
		client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`)))
	if err != nil {
		t.Errorf("a namespace that is not a tenant's keeps its own Pod Security labels: %v", err)
	}
}

// The manager holds none of the verbs that lead to more power than RBAC shows.
func TestManagerHoldsNoEscalationVerbs(t *testing.T) {
	ctx := context.Background()
	for _, attr := range []authorizationv1.ResourceAttributes{
		{Group: rbacv1.GroupName, Resource: "roles", Verb: "escalate", Namespace: "any"},
		{Group: rbacv1.GroupName, Resource: "clusterroles", Verb: "bind", Name: "cluster-admin"},
		{Group: rbacv1.GroupName, Resource: "clusterroles", Verb: "bind", Name: "admin"},
		{Group: rbacv1.GroupName, Resource: "clusterrolebindings", Verb: "create"},
		{Resource: "users", Verb: "impersonate"},
		{Resource: "serviceaccounts", Verb: "impersonate", Namespace: "kube-system"},
		{Resource: "serviceaccounts", Subresource: "token", Verb: "create", Namespace: "any"},
		{Resource: "pods", Verb: "create", Namespace: "any"},
		{Resource: "pods", Subresource: "exec", Verb: "create", Namespace: "any"},
		{Resource: "nodes", Verb: "patch"},
		{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicybindings", Verb: "delete"},
		{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Verb: "update"},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: testenv.ManagerUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + testenv.OperatorNamespace, "system:authenticated"},
			ResourceAttributes: &attr,
		}}
		if err := admin.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			t.Errorf("the manager may %s %s/%s %s: %s", attr.Verb, attr.Resource, attr.Subresource, attr.Name, sar.Status.Reason)
		}
	}
}
