package instance

import (
	"encoding/json"
	"hash/maphash"
	"sync"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// writtenStatus remembers, per instance, hashes of the last two statuses this reconciler wrote
// (a freeze writes twice in one pass). The cache shows a write some milliseconds after it: a
// pass started in between (a child's event, usually) must not work from the status before it
// (freshInstance), and the write's own event must not start a pass (ownStatusWrite). An entry
// is a few words, dropped when the instance is gone.
type writtenStatus struct {
	mu   sync.Mutex
	last map[string][2]uint64
}

var statusSeed = maphash.MakeSeed()

func statusHash(inst *saasv1alpha1.MarketplaceInstance) (uint64, bool) {
	// status.usage is the usage controller's: its writes neither hide nor stand in for ours.
	st := inst.Status
	st.Usage = nil
	b, err := json.Marshal(&st)
	if err != nil {
		return 0, false
	}
	return maphash.Bytes(statusSeed, b), true
}

// writing records inst's status as about to be written: before the write, since its watch
// event may arrive before its response. If the write fails, undo puts back what was there.
func (w *writtenStatus) writing(inst *saasv1alpha1.MarketplaceInstance) (undo func()) {
	h, ok := statusHash(inst)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string][2]uint64{}
	}
	prev, had := w.last[inst.Name]
	if ok {
		w.last[inst.Name] = [2]uint64{h, prev[0]}
	} else {
		delete(w.last, inst.Name)
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if had {
			w.last[inst.Name] = prev
		} else {
			delete(w.last, inst.Name)
		}
	}
}

// shownBy reports whether inst, a cached copy, shows the last status written to it, or none
// was written.
func (w *writtenStatus) shownBy(inst *saasv1alpha1.MarketplaceInstance) bool {
	h, hashed := statusHash(inst)
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.last[inst.Name]
	return !ok || (hashed && h == last[0])
}

// wrote reports whether inst's status is one of the last two this reconciler wrote.
func (w *writtenStatus) wrote(inst *saasv1alpha1.MarketplaceInstance) bool {
	h, hashed := statusHash(inst)
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.last[inst.Name]
	return ok && hashed && (h == last[0] || h == last[1])
}

func (w *writtenStatus) forget(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, name)
}
