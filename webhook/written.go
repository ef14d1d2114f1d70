package webhook

import (
	"hash/maphash"
	"sync"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// maxWritten bounds what writtenCalls remembers; past it, it forgets everything, which costs
// one read per instance on its next call and nothing else.
const maxWritten = 16384

// writtenCalls remembers, per instance, the AnnotationCalls value of this replica's last write
// to it (hashed), until the cache shows it. A decision on a cached copy that does not hold this
// replica's own last write would be refused by the patch's test, costing a refused write, a read
// and a second write; a decision on one that does hold it usually goes through.
type writtenCalls struct {
	mu   sync.Mutex
	seed maphash.Seed
	last map[string]uint64
}

func newWrittenCalls() *writtenCalls {
	return &writtenCalls{seed: maphash.MakeSeed(), last: map[string]uint64{}}
}

func (w *writtenCalls) hash(inst *saasv1alpha1.MarketplaceInstance) uint64 {
	return maphash.String(w.seed, inst.Annotations[saasv1alpha1.AnnotationCalls])
}

// remember records inst as this replica wrote it.
func (w *writtenCalls) remember(inst *saasv1alpha1.MarketplaceInstance) {
	h := w.hash(inst)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) >= maxWritten {
		clear(w.last)
	}
	w.last[inst.Name] = h
}

// holds reports whether inst (a cached copy) holds this replica's last write to it, or this
// replica has none to wait for; once it does, the write is forgotten.
func (w *writtenCalls) holds(inst *saasv1alpha1.MarketplaceInstance) bool {
	h := w.hash(inst)
	w.mu.Lock()
	defer w.mu.Unlock()
	want, ok := w.last[inst.Name]
	if !ok {
		return true
	}
	if want != h {
		return false
	}
	delete(w.last, inst.Name)
	return true
}
