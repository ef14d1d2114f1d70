package webhook

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// Kit data objects in the tenant namespace (or the operator's, for the seller's own app; see
// kitScope). Every entry is one data key: a hash of its identity (so any ID is a valid key and
// the same identity always lands on the same key), holding the whole record as JSON, which
// carries the readable IDs and the sync time the record is from. The tenant app reads every
// object with the kit-data label of its kind.
const (
	// KitTenantsConfigMap holds one entry per enterprise (tenantSync), keyed by tenantId.
	KitTenantsConfigMap = "marketplace-kit-tenants"
	// KitAppsSecret holds one entry per application (applicationSync), keyed by tenantId+appId,
	// with the decrypted SSO client secret; it is a Secret for that reason.
	KitAppsSecret = "marketplace-kit-apps"
	// KitUsersPrefix + NN are the user shards (authSync), keyed by tenantId+appId+userName.
	KitUsersPrefix = "marketplace-kit-users-"
	// KitOrgsPrefix + NN are the department shards (singleOrgSync, allOrgSync), keyed by
	// tenantId+orgCode.
	KitOrgsPrefix = "marketplace-kit-orgs-"
	// LabelKitData names what a kit object holds: tenants, applications, users, departments.
	LabelKitData = "saas.marketplace.dev/kit-data"
)

// LabelKitData values.
const (
	kitDataTenants = "tenants"
	kitDataApps    = "applications"
	kitDataUsers   = "users"
	kitDataOrgs    = "departments"
)

// Shard counts. A user entry is about 300 bytes (at most about 1.2 KiB with every optional field
// at its maximum length), so 32 shards hold 10 000 users in about 100 KiB each and stay under the
// API server's 1 MiB object limit up to roughly 25 000 maximal or 90 000 typical users per
// instance. Departments are smaller and fewer. The counts are part of the storage layout: changing
// them moves entries, so they are constants.
const (
	UserShards = 32
	OrgShards  = 8
	// shardConcurrency bounds the parallel object writes of one sync, so a 500-user authSync or
	// a tenant's delete finishes well inside KooGallery's timeout without flooding the API server.
	shardConcurrency = 4
)

// errTenantNotReady is a sync that adds data before the tenant namespace exists.
var errTenantNotReady = errors.New("tenant namespace does not exist yet")

type kitStore struct {
	client client.Client
	// reader reads kit objects from the API server: the manager's cache must not start an
	// informer on every ConfigMap of the cluster.
	reader client.Reader
	// calls are the kit replay records this replica last saw (kitreplay.go).
	calls kitCalls
	// copies are the kit ConfigMaps this replica last read or wrote (kitobjects.go).
	copies kitCopies
	// seller is the operator's namespace once learnt (kitseller.go).
	seller sellerNamespace
}

// entryKey is the data key of an identity and its shard: both from one SHA-256, so the key is
// always a valid ConfigMap key and the shard is stable.
func entryKey(shards int, parts ...string) (string, int) {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16]), int(binary.BigEndian.Uint32(sum[16:20]) % uint32(shards)) //nolint:gosec // shards is a small positive constant
}

func shardName(prefix string, shard int) string { return fmt.Sprintf("%s%02d", prefix, shard) }

type tenantRecord struct {
	InstanceID string `json:"instanceId"`
	OrderID    string `json:"orderId,omitempty"`
	TenantID   string `json:"tenantId"`
	TenantCode string `json:"tenantCode"`
	Name       string `json:"name"`
	DomainName string `json:"domainName,omitempty"`
	SyncTime   string `json:"syncTime"`
}

type appRecord struct {
	TenantID     string `json:"tenantId"`
	AppID        string `json:"appId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	SyncTime     string `json:"syncTime"`
}

type userRecord struct {
	TenantID string `json:"tenantId"`
	AppID    string `json:"appId"`
	koogallery.User
	CurrentSyncTime string `json:"currentSyncTime"`
}

type orgRecord struct {
	TenantID string `json:"tenantId"`
	koogallery.OrgInfo
	SyncTime string `json:"syncTime"`
}

var (
	tenantsObject = kitObject{name: KitTenantsConfigMap, data: kitDataTenants}
	appsObject    = kitObject{name: KitAppsSecret, data: kitDataApps, secret: true}
)

func userShard(shard int) kitObject {
	return kitObject{name: shardName(KitUsersPrefix, shard), data: kitDataUsers}
}

func orgShard(shard int) kitObject {
	return kitObject{name: shardName(KitOrgsPrefix, shard), data: kitDataOrgs}
}

func userShards() []kitObject {
	objs := make([]kitObject, UserShards)
	for i := range objs {
		objs[i] = userShard(i)
	}
	return objs
}

func orgShards() []kitObject {
	objs := make([]kitObject, OrgShards)
	for i := range objs {
		objs[i] = orgShard(i)
	}
	return objs
}

// tenantSync stores an enterprise, or deletes it with everything synced for it: its apps (with
// their client secrets), their users and its departments.
func (k *kitStore) tenantSync(ctx context.Context, sc kitScope, req *koogallery.TenantSyncRequest) error {
	t, e := syncTime(req), kitEntity{kind: entityTenant, tenant: req.TenantID}
	if req.Flag.Value == koogallery.FlagDelete {
		objs := append(append([]kitObject{tenantsObject, appsObject}, userShards()...), orgShards()...)
		return k.remove(ctx, sc, t, []kitEntity{e}, objs)
	}
	v, err := marshal(tenantRecord{InstanceID: kitCommon(req).InstanceID, OrderID: req.OrderID, TenantID: req.TenantID,
		TenantCode: req.TenantCode, Name: req.Name, DomainName: req.DomainName, SyncTime: t})
	if err != nil {
		return err
	}
	key, _ := entryKey(1, req.TenantID)
	return k.upsertOne(ctx, sc, t, tenantsObject, kitEntry{key: key, entity: e, value: *v})
}

// applicationSync stores an app with its decrypted client secret, or deletes it with its users.
func (k *kitStore) applicationSync(ctx context.Context, sc kitScope, req *koogallery.ApplicationSyncRequest, priv *rsa.PrivateKey) error {
	t, e := syncTime(req), kitEntity{kind: entityApp, tenant: req.TenantID, app: req.AppID}
	if req.Flag.Value == koogallery.FlagDelete {
		return k.remove(ctx, sc, t, []kitEntity{e}, append([]kitObject{appsObject}, userShards()...))
	}
	if priv == nil {
		return errors.New("no RSA private key is configured for kit client secrets")
	}
	secret, err := koogallery.DecryptClientSecret(priv, req.ClientSecret)
	if err != nil {
		return fmt.Errorf("decrypting client secret: %w", err)
	}
	v, err := marshal(appRecord{TenantID: req.TenantID, AppID: req.AppID, ClientID: req.ClientID, ClientSecret: secret, SyncTime: t})
	if err != nil {
		return err
	}
	key, _ := entryKey(1, req.TenantID, req.AppID)
	return k.upsertOne(ctx, sc, t, appsObject, kitEntry{key: key, entity: e, value: *v})
}

// userShardEntries groups an authSync's users by shard, each with the record an add or modify
// stores.
func userShardEntries(req *koogallery.AuthSyncRequest) (map[kitObject][]kitEntry, error) {
	shards := map[kitObject][]kitEntry{}
	for _, u := range req.UserList {
		key, shard := entryKey(UserShards, req.TenantID, req.AppID, u.UserName)
		v, err := marshal(userRecord{TenantID: req.TenantID, AppID: req.AppID, User: u, CurrentSyncTime: req.CurrentSyncTime})
		if err != nil {
			return nil, err
		}
		obj := userShard(shard)
		shards[obj] = append(shards[obj], kitEntry{key: key, entity: kitEntity{kind: entityUser, tenant: req.TenantID, app: req.AppID, name: u.UserName}, value: *v})
	}
	return shards, nil
}

// authSync stores (add, modify) or removes (delete, revoke) the users authorised for an app.
func (k *kitStore) authSync(ctx context.Context, sc kitScope, req *koogallery.AuthSyncRequest) error {
	shards, err := userShardEntries(req)
	if err != nil {
		return err
	}
	t := syncTime(req)
	if req.Flag.Value == koogallery.FlagDelete || req.Flag.Value == koogallery.FlagRevoke {
		var users []kitEntity
		objs := make([]kitObject, 0, len(shards))
		for obj, entries := range shards {
			objs = append(objs, obj)
			for _, en := range entries {
				users = append(users, en.entity)
			}
		}
		return k.remove(ctx, sc, t, users, objs)
	}
	b, err := k.readTombs(ctx, sc)
	if err != nil {
		return err
	}
	return k.upsert(ctx, sc, t, b, shards)
}

// orgEntry is the record of one department synced at t. A link to a parent deleted at or after
// t is dropped: that parent is gone for this department.
func orgEntry(tenantID string, o koogallery.OrgInfo, t string, b tombs) (kitObject, kitEntry, error) {
	if o.ParentCode != "" && b.buried(t, tombKey(entityOrg, tenantID, o.ParentCode)) {
		o.ParentCode = ""
	}
	key, shard := entryKey(OrgShards, tenantID, o.OrgCode)
	v, err := marshal(orgRecord{TenantID: tenantID, OrgInfo: o, SyncTime: t})
	if err != nil {
		return kitObject{}, kitEntry{}, err
	}
	return orgShard(shard), kitEntry{key: key, entity: kitEntity{kind: entityOrg, tenant: tenantID, name: o.OrgCode}, value: *v}, nil
}

// singleOrgSync stores a department, or deletes it and unlinks its sub-departments.
func (k *kitStore) singleOrgSync(ctx context.Context, sc kitScope, req *koogallery.SingleOrgSyncRequest) error {
	t := syncTime(req)
	if req.Flag.Value == koogallery.FlagDelete {
		return k.remove(ctx, sc, t, []kitEntity{{kind: entityOrg, tenant: req.TenantID, name: req.OrgCode}}, orgShards())
	}
	b, err := k.readTombs(ctx, sc)
	if err != nil {
		return err
	}
	obj, en, err := orgEntry(req.TenantID, koogallery.OrgInfo{OrgCode: req.OrgCode, OrgName: req.OrgName, ParentCode: req.ParentCode}, t, b)
	if err != nil {
		return err
	}
	return k.upsert(ctx, sc, t, b, map[kitObject][]kitEntry{obj: {en}})
}

// allOrgSync makes the tenant's department tree the list as of its timeStamp: the listed
// departments are stored, then the tree's time is remembered, which removes every department of
// the tenant synced before it and refuses one that arrives late; the departments of the tenant
// synced no later than that and missing from the list are remembered as deleted too, so their
// sub-departments lose the link. A department synced after the list was taken is left as it is.
// The listed ones are written first, so that a tenant app never reads a tree without them.
func (k *kitStore) allOrgSync(ctx context.Context, sc kitScope, req *koogallery.AllOrgSyncRequest) error {
	t := syncTime(req)
	listed := make(map[string]bool, len(req.OrgInfoList))
	for _, o := range req.OrgInfoList {
		listed[o.OrgCode] = true
	}
	gone := []kitEntity{{kind: entityTree, tenant: req.TenantID}}
	var mu sync.Mutex
	err := k.each(orgShards(), func(obj kitObject) error {
		data, _, err := k.read(ctx, sc, obj)
		if err != nil {
			return err
		}
		for _, v := range data {
			e, at, _, ok := decodeRecord(obj, v)
			if ok && e.tenant == req.TenantID && !listed[e.name] && at <= t {
				mu.Lock()
				gone = append(gone, e)
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b, err := k.readTombs(ctx, sc)
	if err != nil {
		return err
	}
	shards := map[kitObject][]kitEntry{}
	for _, o := range req.OrgInfoList {
		obj, en, err := orgEntry(req.TenantID, o, t, b)
		if err != nil {
			return err
		}
		shards[obj] = append(shards[obj], en)
	}
	// Entries older than what is stored (notApplied) do not stop the tree's deletes.
	var na *notApplied
	stored := k.upsert(ctx, sc, t, b, shards)
	if stored != nil && !errors.As(stored, &na) {
		return stored
	}
	if err := k.remove(ctx, sc, t, gone, orgShards()); err != nil {
		return err
	}
	return stored
}

func (k *kitStore) upsertOne(ctx context.Context, sc kitScope, t string, obj kitObject, en kitEntry) error {
	b, err := k.readTombs(ctx, sc)
	if err != nil {
		return err
	}
	return k.upsert(ctx, sc, t, b, map[kitObject][]kitEntry{obj: {en}})
}

func marshal(v any) (*string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding kit record: %w", err)
	}
	s := string(b)
	return &s, nil
}
