package render

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// InstanceKind is the kind a child's controller owner reference names.
const InstanceKind = "MarketplaceInstance"

// OwnedBy reports whether obj belongs to the instance: its controller owner reference names the
// instance. Every child is created with that reference, and the manager's cache keeps it (not
// the instance label). The name, not the UID, decides: instances are cluster-scoped, so the name
// is unique, and an instance deleted and made again under its name takes over what the old one
// left while the garbage collector has not removed it yet.
//
// A name derived from the instance (NamespaceName) is not proof enough: a hashed long name can
// equal the plain name of another, crafted instance, and an object can be put under a derived
// name by anyone allowed to create it there.
func OwnedBy(obj metav1.Object, inst *v1alpha1.MarketplaceInstance) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && refersToInstance(*ref, inst.Name)
}

// OwnerReference is the controller reference to inst that every object the operator creates for
// it carries: the reconciler's children and the marketplace endpoint's kit objects. It is what
// controllerutil.SetControllerReference would set (blockOwnerDeletion included, so a foreground
// deletion of the instance waits for its children), built without a scheme.
func OwnerReference(inst *v1alpha1.MarketplaceInstance) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: InstanceKind, Name: inst.Name, UID: inst.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

// SetOwner makes inst the controller of obj (OwnerReference): a reference to the instance is
// replaced in place, other owners a plan's template names are kept, and a template naming
// another controller is refused.
func SetOwner(obj metav1.Object, inst *v1alpha1.MarketplaceInstance) error {
	ours := OwnerReference(inst)
	refs := obj.GetOwnerReferences()
	for i, r := range refs {
		switch {
		case refersToInstance(r, inst.Name):
			refs[i] = ours
			obj.SetOwnerReferences(refs)
			return nil
		case r.Controller != nil && *r.Controller:
			return fmt.Errorf("already controlled by %s %q", r.Kind, r.Name)
		}
	}
	obj.SetOwnerReferences(append(refs, ours))
	return nil
}

// refersToInstance: ref names the instance called name, in any version of the API group.
func refersToInstance(ref metav1.OwnerReference, name string) bool {
	return ref.Kind == InstanceKind && ref.Name == name && strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/")
}
