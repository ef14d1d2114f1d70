package render

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	return ref != nil && ref.Kind == InstanceKind && ref.Name == inst.Name &&
		strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/")
}
