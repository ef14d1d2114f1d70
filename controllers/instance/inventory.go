package instance

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// status.resources is the inventory: every object the operator applied for the tenant and what
// it remembers of each (the hash it applied, the generation that produced, a frozen workload's
// replica count). It lives in status, not in annotations on the children, so that
// `kubectl get mpi -o yaml` shows what the operator believes it owns, and the cache can keep
// faithful subsets of the children.

func refFor(gvk schema.GroupVersionKind, name string) saasv1alpha1.ResourceRef {
	return saasv1alpha1.ResourceRef{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: name}
}

func sameObject(a, b saasv1alpha1.ResourceRef) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name
}

// entry is the inventory's entry for ref, or nil.
func (s *scope) entry(ref saasv1alpha1.ResourceRef) *saasv1alpha1.ResourceRef {
	for i := range s.inst.Status.Resources {
		if sameObject(s.inst.Status.Resources[i], ref) {
			return &s.inst.Status.Resources[i]
		}
	}
	return nil
}

// generationOf is the generation the operator's last apply gave ref, or 0.
func (s *scope) generationOf(ref saasv1alpha1.ResourceRef) int64 {
	if e := s.entry(ref); e != nil {
		return e.Generation
	}
	return 0
}

// entryFor is the inventory's entry for ref, added (in order) if there is none.
func (s *scope) entryFor(ref saasv1alpha1.ResourceRef) *saasv1alpha1.ResourceRef {
	if e := s.entry(ref); e != nil {
		return e
	}
	s.inst.Status.Resources = append(s.inst.Status.Resources, saasv1alpha1.ResourceRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name})
	render.SortInventory(s.inst.Status.Resources)
	return s.entry(ref)
}

// recordApplied notes what an apply of ref wrote. An apply while the tenant runs restores a
// frozen count, which is then forgotten.
func (s *scope) recordApplied(ref saasv1alpha1.ResourceRef, hash string, generation int64) {
	e := s.entryFor(ref)
	e.AppliedHash, e.Generation = hash, generation
	if !s.frozen {
		e.FrozenReplicas = nil
	}
}

// forget drops ref from the inventory once the object is gone.
func (s *scope) forget(ref saasv1alpha1.ResourceRef) {
	s.inst.Status.Resources = slices.DeleteFunc(s.inst.Status.Resources, func(e saasv1alpha1.ResourceRef) bool { return sameObject(e, ref) })
}
