package render_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

func TestOwnedBy(t *testing.T) {
	inst := &v1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: "cs1-000001", UID: "u1"}}
	ref := func(apiVersion, kind, name string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: "u1", Controller: ptr.To(controller)}
	}
	gv := v1alpha1.GroupVersion.String()
	// Long names are hashed; a crafted short name can give the same namespace.
	long := strings.Repeat("a", 63)
	crafted := strings.TrimPrefix(render.NamespaceName(long), render.NamespacePrefix)
	cases := []struct {
		name string
		refs []metav1.OwnerReference
		want bool
	}{
		{"controller reference to the instance", []metav1.OwnerReference{ref(gv, render.InstanceKind, "cs1-000001", true)}, true},
		{"another version of the group", []metav1.OwnerReference{ref(v1alpha1.GroupVersion.Group+"/v1", render.InstanceKind, "cs1-000001", true)}, true},
		{"after another, non-controller reference", []metav1.OwnerReference{ref("v1", "ConfigMap", "x", false), ref(gv, render.InstanceKind, "cs1-000001", true)}, true},
		{"no owner", nil, false},
		{"another instance", []metav1.OwnerReference{ref(gv, render.InstanceKind, "cs2-000001", true)}, false},
		{"not the controller", []metav1.OwnerReference{ref(gv, render.InstanceKind, "cs1-000001", false)}, false},
		{"another kind", []metav1.OwnerReference{ref(gv, "MarketplacePlan", "cs1-000001", true)}, false},
		{"another group", []metav1.OwnerReference{ref("example.com/v1", render.InstanceKind, "cs1-000001", true)}, false},
		{"a group with our group as prefix", []metav1.OwnerReference{ref(v1alpha1.GroupVersion.Group+".evil.example/v1", render.InstanceKind, "cs1-000001", true)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: render.CredentialsSecretName, OwnerReferences: tc.refs}}
			if got := render.OwnedBy(obj, inst); got != tc.want {
				t.Errorf("OwnedBy = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("crafted name sharing a namespace", func(t *testing.T) {
		if render.NamespaceName(crafted) != render.NamespaceName(long) {
			t.Fatalf("%q and %q do not share a namespace", crafted, long)
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: render.NamespaceName(long),
			OwnerReferences: []metav1.OwnerReference{ref(gv, render.InstanceKind, long, true)}}}
		other := &v1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: crafted}}
		if render.OwnedBy(ns, other) {
			t.Error("the crafted instance owns the long-named instance's namespace")
		}
	})
}
