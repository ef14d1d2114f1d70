package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"k8s.io/utils/ptr"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// KitDeletedConfigMap remembers the kit deletes of one scope (tenant namespace, or the
// operator's namespace for the seller's own app): per deleted entity (tenant, app, user,
// department) a hash of its identity and the sync time of the delete, nothing readable. Kit
// syncs are applied in the order of their sync times (authSync's currentSyncTime, the other
// syncs' timeStamp), per entity: a sync older than, or as old as, the delete of the entity or of
// one it belongs to (the tenant of an app, the app of a user) is not applied, so a late add or
// a retried one never brings back what was deleted after it. It carries no kit-data label:
// tenant apps never read it.
const KitDeletedConfigMap = "marketplace-kit-deleted"

// MaxKitTombstones bounds the deletes KitDeletedConfigMap remembers (about 60 bytes each, so
// the object stays under 256 KiB). Beyond it the oldest are forgotten and their newest sync time
// becomes the floor: an entity with no record is then added only by a sync newer than the floor.
// A cascade (a tenant, an app) is one entry however much it removed.
const MaxKitTombstones = 4096

// tombFloorKey holds the floor in KitDeletedConfigMap; every other key is a 32-digit hash.
const tombFloorKey = "floor"

var deletedObject = kitObject{name: KitDeletedConfigMap}

// Kinds of kit entities, as hashed into their tombstone keys.
const (
	entityTenant = "tenant"
	entityApp    = "app"
	entityUser   = "user"
	entityOrg    = "org"
	// entityTree is a tenant's last full department tree (allOrgSync): every department it
	// keeps is stored at its time, so a department synced before it is not in it.
	entityTree = "orgtree"
)

// kitEntity identifies one synced entity: a tenant, an app of a tenant, a user of an app, a
// department of a tenant (name is the userName or the orgCode).
type kitEntity struct {
	kind, tenant, app, name string
}

func tombKey(kind string, parts ...string) string {
	key, _ := entryKey(1, append([]string{kind}, parts...)...)
	return key
}

// lineage is the tombstone keys whose delete removes e: its own and those of what it belongs to.
func (e kitEntity) lineage() []string {
	keys := []string{tombKey(entityTenant, e.tenant)}
	switch e.kind {
	case entityApp:
		keys = append(keys, tombKey(entityApp, e.tenant, e.app))
	case entityUser:
		keys = append(keys, tombKey(entityApp, e.tenant, e.app), tombKey(entityUser, e.tenant, e.app, e.name))
	case entityOrg:
		keys = append(keys, tombKey(entityOrg, e.tenant, e.name))
	case entityTree:
		keys = append(keys, tombKey(entityTree, e.tenant))
	}
	return keys
}

func (e kitEntity) tomb() string {
	l := e.lineage()
	return l[len(l)-1]
}

// tombs is KitDeletedConfigMap as read.
type tombs struct {
	at    map[string]string // tombstone key → sync time of the delete
	floor string
	rv    string
}

func (k *kitStore) readTombs(ctx context.Context, sc kitScope) (tombs, error) {
	data, rv, err := k.read(ctx, sc, deletedObject)
	if err != nil {
		return tombs{}, err
	}
	floor := data[tombFloorKey]
	delete(data, tombFloorKey)
	return tombs{at: data, floor: floor, rv: rv}, nil
}

// buried reports whether a sync at t is no newer than a remembered delete of one of keys. Sync
// times are 17 digits, so they compare as strings; a tie goes to the delete.
func (b tombs) buried(t string, keys ...string) bool {
	for _, key := range keys {
		if at, ok := b.at[key]; ok && t <= at {
			return true
		}
	}
	return false
}

// outdated reports whether a department synced at t is older than its tenant's last full tree,
// which stores every department it keeps at its own time: so one synced before it, stored or
// arriving late, was left out. A tie goes to the department, which the tree may have listed.
func (b tombs) outdated(e kitEntity, t string) bool {
	if e.kind != entityOrg {
		return false
	}
	at, ok := b.at[tombKey(entityTree, e.tenant)]
	return ok && t < at
}

// admits reports whether a sync at t may set the record of e, given its stored record (stored
// false when there is none, then its sync time is meaningless).
func (b tombs) admits(e kitEntity, t, storedAt string, stored bool) bool {
	if b.buried(t, e.lineage()...) || b.outdated(e, t) {
		return false
	}
	if stored {
		return t >= storedAt
	}
	return t > b.floor
}

// bury remembers deletes (tombstone key → sync time), each at the later of its times, before
// anything is removed: a sync that checks the tombstones after writing (upsert) then sees the
// delete, or the delete's sweep sees its write.
func (k *kitStore) bury(ctx context.Context, sc kitScope, deletes map[string]string) error {
	return k.edit(ctx, sc, deletedObject, func(data map[string]string) map[string]*string {
		changes := map[string]*string{}
		next := maps.Clone(data)
		for key, t := range deletes {
			if next[key] < t {
				changes[key], next[key] = ptr.To(t), t
			}
		}
		evictOldest(next, changes)
		return changes
	})
}

// evictOldest forgets the oldest tombstones of next beyond MaxKitTombstones (down to 7/8 of it,
// so that eviction is not paid on every delete) and raises the floor to the newest forgotten.
func evictOldest(next map[string]string, changes map[string]*string) {
	floor := next[tombFloorKey]
	delete(next, tombFloorKey)
	if len(next) <= MaxKitTombstones {
		return
	}
	keys := make([]string, 0, len(next))
	for key := range next {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if next[a] != next[b] {
			return cmp.Compare(next[a], next[b])
		}
		return cmp.Compare(a, b)
	})
	for _, key := range keys[:len(keys)-MaxKitTombstones*7/8] {
		floor = max(floor, next[key])
		changes[key] = nil
	}
	changes[tombFloorKey] = ptr.To(floor)
}

// storedRecord is what every stored record says of its entity: who it is and when it was
// synced. Users carry the authSync's currentSyncTime, the others the sync's timeStamp.
type storedRecord struct {
	TenantID        string `json:"tenantId"`
	AppID           string `json:"appId"`
	UserName        string `json:"userName"`
	OrgCode         string `json:"orgCode"`
	ParentCode      string `json:"parentCode"`
	SyncTime        string `json:"syncTime"`
	CurrentSyncTime string `json:"currentSyncTime"`
}

// decodeRecord reads a stored record of obj's kind: its entity, sync time and, for a
// department, its parent. An unreadable entry is reported not ok and left alone.
func decodeRecord(obj kitObject, v string) (kitEntity, string, string, bool) {
	var r storedRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil || r.TenantID == "" {
		return kitEntity{}, "", "", false
	}
	switch obj.data {
	case kitDataTenants:
		return kitEntity{kind: entityTenant, tenant: r.TenantID}, r.SyncTime, "", true
	case kitDataApps:
		return kitEntity{kind: entityApp, tenant: r.TenantID, app: r.AppID}, r.SyncTime, "", true
	case kitDataUsers:
		return kitEntity{kind: entityUser, tenant: r.TenantID, app: r.AppID, name: r.UserName}, r.CurrentSyncTime, "", true
	case kitDataOrgs:
		return kitEntity{kind: entityOrg, tenant: r.TenantID, name: r.OrgCode}, r.SyncTime, r.ParentCode, true
	}
	return kitEntity{}, "", "", false
}

// sweepEntries is the change a sweep makes to one object: the entries a remembered delete covers
// are removed, and a department whose parent was deleted after it was synced loses that link.
func sweepEntries(obj kitObject, b tombs) editFunc {
	return func(data map[string]string) map[string]*string {
		changes := map[string]*string{}
		for key, v := range data {
			e, at, parent, ok := decodeRecord(obj, v)
			switch {
			case !ok:
			case b.buried(at, e.lineage()...), b.outdated(e, at):
				changes[key] = nil
			case parent != "" && b.buried(at, tombKey(entityOrg, e.tenant, parent)):
				if unlinked, err := unlinkParent(v); err == nil {
					changes[key] = unlinked
				}
			}
		}
		return changes
	}
}

func unlinkParent(v string) (*string, error) {
	var r orgRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, err
	}
	r.ParentCode = ""
	return marshal(r)
}

// sweep applies the remembered deletes to objs, a few at a time.
func (k *kitStore) sweep(ctx context.Context, sc kitScope, b tombs, objs []kitObject) error {
	return k.each(objs, func(obj kitObject) error {
		return k.edit(ctx, sc, obj, sweepEntries(obj, b))
	})
}

// each runs fn on every object, shardConcurrency at a time, and joins the errors.
func (k *kitStore) each(objs []kitObject, fn func(kitObject) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, shardConcurrency)
	)
	for _, obj := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(obj); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// remove deletes entities at sync time t: their deletes are remembered first, then every object
// that may hold them or what belongs to them is swept.
func (k *kitStore) remove(ctx context.Context, sc kitScope, t string, entities []kitEntity, objs []kitObject) error {
	deletes := make(map[string]string, len(entities))
	for _, e := range entities {
		deletes[e.tomb()] = t
	}
	if err := k.bury(ctx, sc, deletes); err != nil {
		return err
	}
	b, err := k.readTombs(ctx, sc)
	if err != nil {
		return err
	}
	return k.sweep(ctx, sc, b, objs)
}

// kitEntry is one record an add or modify would store.
type kitEntry struct {
	key    string
	entity kitEntity
	value  string
}

// upsert stores entries synced at t into their objects, each only if the stored state admits
// it (tombs.admits). A delete that lands between the tombstone read and the write is caught by
// reading the tombstones again afterwards: if they changed, the written objects are swept. It
// reports the entries it left as they were with a *notApplied.
func (k *kitStore) upsert(ctx context.Context, sc kitScope, t string, b tombs, byObject map[kitObject][]kitEntry) error {
	objs := make([]kitObject, 0, len(byObject))
	for obj := range byObject {
		objs = append(objs, obj)
	}
	var (
		mu    sync.Mutex
		stale = map[kitObject]int{} // per object, as decided by the write that went through
	)
	err := k.each(objs, func(obj kitObject) error {
		return k.edit(ctx, sc, obj, func(data map[string]string) map[string]*string {
			changes := map[string]*string{}
			for _, en := range byObject[obj] {
				old, stored := data[en.key]
				_, at, _, _ := decodeRecord(obj, old)
				if b.admits(en.entity, t, at, stored) {
					changes[en.key] = ptr.To(en.value)
				}
			}
			mu.Lock()
			stale[obj] = len(byObject[obj]) - len(changes)
			mu.Unlock()
			return changes
		})
	})
	if err != nil {
		return err
	}
	after, err := k.readTombs(ctx, sc)
	if err == nil && after.rv != b.rv {
		err = k.sweep(ctx, sc, after, objs)
	}
	if err != nil {
		return err
	}
	na := &notApplied{}
	for obj, entries := range byObject {
		na.stale, na.total = na.stale+stale[obj], na.total+len(entries)
	}
	if na.stale > 0 {
		return na
	}
	return nil
}

// notApplied is a sync some of whose entries were not applied: older than (or as old as) what is
// stored for them, or than a delete of them or of what they belong to. The call still succeeds.
type notApplied struct{ stale, total int }

func (e *notApplied) Error() string {
	return fmt.Sprintf("%d of %d entries are older than what is stored and were not applied", e.stale, e.total)
}

// syncTime is the time a kit sync is ordered by: the change's currentSyncTime for authSync, the
// call's timeStamp for the others (KooGallery keeps the body, timeStamp included, when it calls
// again; only the x-headers are signed anew).
func syncTime(req koogallery.KitRequest) string {
	if a, ok := req.(*koogallery.AuthSyncRequest); ok {
		return a.CurrentSyncTime
	}
	return kitCommon(req).TimeStamp
}
