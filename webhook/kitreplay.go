package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// KitCallsConfigMap remembers, in the namespace of the kit data (kitScope), the nonces of the kit
// syncs stored there for as long as their timestamps can pass verification, so that a signed
// sync replayed to any replica is refused as a replay: each replica's replay cache is its own.
// A replayed sync would change nothing anyway (syncs are applied in sync-time order per entity,
// see KitDeletedConfigMap), but it is answered as what it is. It carries no kit-data label:
// tenant apps never read it.
const KitCallsConfigMap = "marketplace-kit-calls"

// admitKitCall records the nonce of a kit sync about to be stored in ns for inst (nil for the
// seller's own app) and reports true, or reports false when it is recorded already: the same
// signed request was stored before, by this replica or another one. Entries expire at expiry (the replay cache's lifetime); expired ones
// are dropped on every write, so the object stays as small as the kit traffic of that span. A
// tenant namespace that does not exist yet holds nothing a replay could undo.
func (k *kitStore) admitKitCall(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns, nonce string, now, expiry time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(nonce))
	key := hex.EncodeToString(sum[:16])
	exp := strconv.FormatInt(expiry.UnixMilli(), 10)
	sc := kitScope{inst: inst, ns: ns}
	cm := k.calls.get(ns)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if cm == nil {
			cm = &corev1.ConfigMap{}
			err := k.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: KitCallsConfigMap}, cm)
			if apierrors.IsNotFound(err) {
				cm = kitCallsObject(sc, map[string]string{key: exp})
				err = k.client.Create(ctx, cm)
				switch {
				case err == nil:
					k.calls.put(ns, cm)
					return true, nil
				case apierrors.IsNotFound(err):
					return true, nil
				case apierrors.IsAlreadyExists(err):
					cm = nil
					continue
				}
				return false, fmt.Errorf("creating %s: %w", KitCallsConfigMap, err)
			}
			if err != nil {
				return false, fmt.Errorf("reading %s: %w", KitCallsConfigMap, err)
			}
		}
		data := make(map[string]string, len(cm.Data)+1)
		for n, v := range cm.Data {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && now.UnixMilli() < ms {
				data[n] = v
			}
		}
		if _, seen := data[key]; seen {
			// Even a stale copy is right about that: entries only go once they have expired.
			return false, nil
		}
		next := cm.DeepCopy()
		next.Data = data
		data[key] = exp
		// Update carries the resourceVersion of the copy the check was made on: if anything wrote
		// the object since (another replica admitting a nonce), it conflicts and the check is
		// made again on a fresh read.
		err := k.client.Update(ctx, next)
		switch {
		case err == nil:
			k.calls.put(ns, next)
			return true, nil
		case apierrors.IsConflict(err), apierrors.IsNotFound(err):
			k.calls.put(ns, nil)
			cm = nil
			continue
		}
		return false, fmt.Errorf("writing %s: %w", KitCallsConfigMap, err)
	}
	return false, errConflicts
}

// maxRememberedCalls bounds the copies kitCalls keeps; beyond it they are all dropped and read
// again when needed.
const maxRememberedCalls = 1024

// kitCalls remembers the last KitCallsConfigMap this replica read or wrote per namespace, so that
// admitting a nonce usually takes one optimistic update instead of a read and an update: the
// extra round trip would sit in front of every kit sync, within KooGallery's timeout. A stale
// copy costs a conflict and a read. The zero value is ready to use.
type kitCalls struct {
	mu   sync.Mutex
	byNS map[string]*corev1.ConfigMap
}

func (c *kitCalls) get(ns string) *corev1.ConfigMap {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm := c.byNS[ns]; cm != nil {
		return cm.DeepCopy()
	}
	return nil
}

func (c *kitCalls) put(ns string, cm *corev1.ConfigMap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm == nil {
		delete(c.byNS, ns)
		return
	}
	if c.byNS == nil || len(c.byNS) >= maxRememberedCalls {
		c.byNS = map[string]*corev1.ConfigMap{}
	}
	c.byNS[ns] = cm.DeepCopy()
}

func kitCallsObject(sc kitScope, data map[string]string) *corev1.ConfigMap {
	cm, _ := newObject(sc, kitObject{name: KitCallsConfigMap}, data).(*corev1.ConfigMap)
	return cm
}
