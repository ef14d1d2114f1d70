package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// kitScope is where one party's kit data lives: the tenant namespace of an instance, or, for
// the seller's own app (syncs without an instanceId), the operator's namespace with no
// instance to own it.
type kitScope struct {
	inst *saasv1alpha1.MarketplaceInstance // nil for the seller's own app
	ns   string
}

// kitObject names one kit object and what kind of data it holds.
type kitObject struct {
	name   string
	data   string // LabelKitData value; empty for the operator's own records (tombstones)
	secret bool
}

// maxKitAttempts bounds the read-decide-write rounds of one kit object: concurrent syncs that
// write the same object (every 500-user authSync touches nearly every user shard) refuse each
// other's writes, and each round lets at least one through. The call timeout bounds the total.
const maxKitAttempts = 32

// errKitRetry is a write that lost a race (the object changed or appeared since it was read).
var errKitRetry = errors.New("the kit object changed since it was read")

// editFunc decides the changes to an object's entries from their current values: a value to
// set, or nil to remove. It must be pure: it runs again on a fresh read after a lost race.
type editFunc func(data map[string]string) map[string]*string

// edit reads an object from the API server, decides its changes with fn and writes them tested
// against the read's resourceVersion, again on a fresh read until the write is not refused. So
// every decision is made on the object as it is when the decision is written: an entry is only
// replaced by a newer sync of it, never by one that was decided on a stale copy.
//
// The first decision is made on this replica's last copy of the object when it has one
// (kitCopies): a stale copy costs a refused write and a read, and saves a read of up to a few
// hundred KiB on every sync of a busy tenant. Only a write tests a copy, so a decision to write
// nothing is made again on a fresh read: a copy can miss entries written since (concurrent calls
// put their copies in any order), and a sweep deciding on it would leave them in place.
func (k *kitStore) edit(ctx context.Context, sc kitScope, obj kitObject, fn editFunc) error {
	data, rv, cached := k.copies.get(sc.ns, obj)
	for attempt := 0; attempt < maxKitAttempts; attempt++ {
		if !cached {
			var err error
			if data, rv, err = k.read(ctx, sc, obj); err != nil {
				return err
			}
		}
		changes := fn(data)
		if !changesAnything(data, changes) {
			if !cached {
				return nil
			}
			cached = false
			continue
		}
		cached = false
		err := k.write(ctx, sc, obj, rv, changes)
		if !errors.Is(err, errKitRetry) {
			return err
		}
	}
	return errConflicts
}

func changesAnything(data map[string]string, changes map[string]*string) bool {
	for key, v := range changes {
		old, ok := data[key]
		if (v == nil && ok) || (v != nil && (!ok || old != *v)) {
			return true
		}
	}
	return false
}

// read returns an object's entries and resourceVersion; an absent object has none and "".
func (k *kitStore) read(ctx context.Context, sc kitScope, obj kitObject) (map[string]string, string, error) {
	key := client.ObjectKey{Namespace: sc.ns, Name: obj.name}
	if obj.secret {
		s := &corev1.Secret{}
		err := k.reader.Get(ctx, key, s)
		if apierrors.IsNotFound(err) {
			return map[string]string{}, "", nil
		}
		if err != nil {
			return nil, "", wrapKitErr(obj, "reading", err)
		}
		data := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			data[k] = string(v)
		}
		return data, s.ResourceVersion, nil
	}
	cm := &corev1.ConfigMap{}
	err := k.reader.Get(ctx, key, cm)
	if apierrors.IsNotFound(err) {
		return map[string]string{}, "", nil
	}
	if err != nil {
		return nil, "", wrapKitErr(obj, "reading", err)
	}
	k.copies.put(sc.ns, obj, cm)
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	return cm.Data, cm.ResourceVersion, nil
}

// maxKitCopyBytes bounds the entries kitCopies holds, all objects together; beyond it they are
// all dropped and read again when needed.
const maxKitCopyBytes = 16 << 20

// kitCopies remembers the last copy of each kit ConfigMap this replica read or wrote, so that a
// write usually needs no read first. Secrets are never remembered: the client secrets they hold
// stay in memory no longer than a call. The zero value is ready to use.
type kitCopies struct {
	mu    sync.Mutex
	bytes int
	byKey map[string]*corev1.ConfigMap
}

func copyKey(ns string, obj kitObject) string { return ns + "/" + obj.name }

func (c *kitCopies) get(ns string, obj kitObject) (map[string]string, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cm := c.byKey[copyKey(ns, obj)]
	if cm == nil {
		return nil, "", false
	}
	data := make(map[string]string, len(cm.Data))
	maps.Copy(data, cm.Data)
	return data, cm.ResourceVersion, true
}

func (c *kitCopies) put(ns string, obj kitObject, o client.Object) {
	cm, ok := o.(*corev1.ConfigMap)
	if !ok || cm.ResourceVersion == "" {
		return
	}
	size := 0
	for key, v := range cm.Data {
		size += len(key) + len(v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(copyKey(ns, obj))
	if c.byKey == nil || c.bytes+size > maxKitCopyBytes {
		c.byKey, c.bytes = map[string]*corev1.ConfigMap{}, 0
	}
	c.byKey[copyKey(ns, obj)] = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{ResourceVersion: cm.ResourceVersion}, Data: maps.Clone(cm.Data)}
	c.bytes += size
}

func (c *kitCopies) drop(ns string, obj kitObject) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(copyKey(ns, obj))
}

func (c *kitCopies) dropLocked(key string) {
	if cm := c.byKey[key]; cm != nil {
		for k, v := range cm.Data {
			c.bytes -= len(k) + len(v)
		}
		delete(c.byKey, key)
	}
}

// write applies changes to the object read at resourceVersion rv (creating it when rv is ""),
// or reports errKitRetry when the object is no longer that version. A merge patch carrying the
// resourceVersion is refused on any change since, and touches only the changed keys.
func (k *kitStore) write(ctx context.Context, sc kitScope, obj kitObject, rv string, changes map[string]*string) error {
	if rv == "" {
		return k.create(ctx, sc, obj, changes)
	}
	data := make(map[string]any, len(changes))
	for key, v := range changes {
		switch {
		case v == nil:
			data[key] = nil
		case obj.secret:
			data[key] = base64.StdEncoding.EncodeToString([]byte(*v))
		default:
			data[key] = *v
		}
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": rv}, "data": data})
	if err != nil {
		return fmt.Errorf("encoding patch: %w", err)
	}
	patched := emptyObject(obj, sc.ns)
	err = k.client.Patch(ctx, patched, client.RawPatch(types.MergePatchType, body))
	switch {
	case err == nil:
		k.copies.put(sc.ns, obj, patched)
		return nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		k.copies.drop(sc.ns, obj)
		return errKitRetry
	}
	return wrapKitErr(obj, "writing", err)
}

// create makes an absent object with the entries changes sets; removing from it is done.
func (k *kitStore) create(ctx context.Context, sc kitScope, obj kitObject, changes map[string]*string) error {
	sets := map[string]string{}
	for key, v := range changes {
		if v != nil {
			sets[key] = *v
		}
	}
	if len(sets) == 0 {
		return nil
	}
	created := newObject(sc, obj, sets)
	err := k.client.Create(ctx, created)
	switch {
	case err == nil:
		k.copies.put(sc.ns, obj, created)
		return nil
	case apierrors.IsAlreadyExists(err):
		return errKitRetry
	case apierrors.IsNotFound(err):
		return errTenantNotReady
	}
	return wrapKitErr(obj, "creating", err)
}

func wrapKitErr(obj kitObject, verb string, err error) error {
	return fmt.Errorf("%s %s: %w", verb, obj.name, err)
}

func emptyObject(obj kitObject, ns string) client.Object {
	meta := metav1.ObjectMeta{Namespace: ns, Name: obj.name}
	if obj.secret {
		return &corev1.Secret{ObjectMeta: meta}
	}
	return &corev1.ConfigMap{ObjectMeta: meta}
}

// newObject is a kit object with its first entries. In a tenant namespace it is labelled for
// the operator's cache and owned by the instance, so that it goes with the tenant; the tenant
// app reads the objects with the kit-data label of a kind.
func newObject(sc kitScope, obj kitObject, entries map[string]string) client.Object {
	labels := map[string]string{render.LabelManagedBy: render.ManagedBy}
	meta := metav1.ObjectMeta{Namespace: sc.ns, Name: obj.name}
	if sc.inst != nil {
		labels = render.Labels(sc.inst)
		meta.OwnerReferences = []metav1.OwnerReference{render.OwnerReference(sc.inst)}
	}
	if obj.data != "" {
		labels[LabelKitData] = obj.data
	}
	meta.Labels = labels
	if obj.secret {
		data := make(map[string][]byte, len(entries))
		for key, v := range entries {
			data[key] = []byte(v)
		}
		return &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: data}
	}
	return &corev1.ConfigMap{ObjectMeta: meta, Data: maps.Clone(entries)}
}
