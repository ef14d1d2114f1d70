package render_test

import (
	"reflect"
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

func TestOwnerReference(t *testing.T) {
	inst := &v1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: "cs1-000001", UID: "u1"}}
	want := metav1.OwnerReference{APIVersion: "saas.marketplace.dev/v1alpha1", Kind: "MarketplaceInstance", Name: "cs1-000001",
		UID: "u1", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	if got := render.OwnerReference(inst); !reflect.DeepEqual(got, want) {
		t.Errorf("OwnerReference = %+v, want %+v", got, want)
	}
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{render.OwnerReference(inst)}}}
	if !render.OwnedBy(obj, inst) {
		t.Error("an object with OwnerReference is not OwnedBy the instance")
	}
}

func TestSetOwner(t *testing.T) {
	inst := &v1alpha1.MarketplaceInstance{ObjectMeta: metav1.ObjectMeta{Name: "cs1-000001", UID: "u2"}}
	ours := render.OwnerReference(inst)
	other := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "c1"}
	cases := []struct {
		name    string
		refs    []metav1.OwnerReference
		want    []metav1.OwnerReference
		wantErr bool
	}{
		{"no owner", nil, []metav1.OwnerReference{ours}, false},
		{"another, non-controller owner is kept", []metav1.OwnerReference{other}, []metav1.OwnerReference{other, ours}, false},
		{"a stale reference to the instance is replaced in place", []metav1.OwnerReference{
			{APIVersion: v1alpha1.GroupVersion.String(), Kind: render.InstanceKind, Name: inst.Name, UID: "old"}, other},
			[]metav1.OwnerReference{ours, other}, false},
		{"another controller is refused", []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web",
			UID: "d1", Controller: ptr.To(true)}}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{OwnerReferences: tc.refs}}
			err := render.SetOwner(obj, inst)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("SetOwner = nil, want an error; owner references %+v", obj.OwnerReferences)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(obj.OwnerReferences, tc.want) {
				t.Errorf("owner references = %+v, want %+v", obj.OwnerReferences, tc.want)
			}
			if !render.OwnedBy(obj, inst) {
				t.Error("not OwnedBy the instance after SetOwner")
			}
		})
	}
}
