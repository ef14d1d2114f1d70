package instance

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// The inventory is what the operator remembers about each child it applied, kept in the
// instance's status where a person can read it: status.resources for the plan's objects (the
// only list pruning compares with the plan) and status.baseResources for the objects every
// tenant has. An entry is identified by apiVersion, kind and name; the namespace is the
// tenant's.

// sameObject reports whether a and b name the same object.
func sameObject(a, b saasv1alpha1.ResourceRef) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name
}

// refFor is the bare entry of an object.
func refFor(gvk schema.GroupVersionKind, name string) saasv1alpha1.ResourceRef {
	return saasv1alpha1.ResourceRef{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: name}
}

// findRef returns the entry of ref's object in refs, or nil.
func findRef(refs []saasv1alpha1.ResourceRef, ref saasv1alpha1.ResourceRef) *saasv1alpha1.ResourceRef {
	for i := range refs {
		if sameObject(refs[i], ref) {
			return &refs[i]
		}
	}
	return nil
}

// setRef records entry in refs, replacing the entry of the same object, and keeps refs sorted.
func setRef(refs []saasv1alpha1.ResourceRef, entry saasv1alpha1.ResourceRef) []saasv1alpha1.ResourceRef {
	if old := findRef(refs, entry); old != nil {
		*old = entry
		return refs
	}
	refs = append(refs, entry)
	sortRefs(refs)
	return refs
}

// dropRef removes the entry of ref's object from refs.
func dropRef(refs []saasv1alpha1.ResourceRef, ref saasv1alpha1.ResourceRef) []saasv1alpha1.ResourceRef {
	return slices.DeleteFunc(refs, func(r saasv1alpha1.ResourceRef) bool { return sameObject(r, ref) })
}

// recordBase records entry in status.baseResources.
func (s *scope) recordBase(entry saasv1alpha1.ResourceRef) {
	s.inst.Status.BaseResources = setRef(s.inst.Status.BaseResources, entry)
}

// baseEntry is the entry status.baseResources holds for ref's object, or nil. The caller must
// not keep it across a recordBase.
func (s *scope) baseEntry(ref saasv1alpha1.ResourceRef) *saasv1alpha1.ResourceRef {
	if e := findRef(s.inst.Status.BaseResources, ref); e != nil {
		c := *e
		return &c
	}
	return nil
}

// forgetBase removes ref's object from status.baseResources (it was deleted).
func (s *scope) forgetBase(ref saasv1alpha1.ResourceRef) {
	if findRef(s.inst.Status.BaseResources, ref) != nil {
		s.inst.Status.BaseResources = dropRef(s.inst.Status.BaseResources, ref)
		if len(s.inst.Status.BaseResources) == 0 {
			s.inst.Status.BaseResources = nil
		}
	}
}

func sortRefs(refs []saasv1alpha1.ResourceRef) {
	slices.SortFunc(refs, func(a, b saasv1alpha1.ResourceRef) int {
		return strings.Compare(a.APIVersion+"/"+a.Kind+"/"+a.Name, b.APIVersion+"/"+b.Kind+"/"+b.Name)
	})
}
