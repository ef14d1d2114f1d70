package webhook

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
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
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// Kit data objects in the tenant namespace. Every entry is one data key: a hash of its identity
// (so any ID is a valid key and the same identity always lands on the same key), holding the
// whole record as JSON, which carries the readable IDs. The tenant app reads every object with
// the kit-data label of its kind.
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

// Shard counts. A user entry is about 300 bytes (at most about 1.2 KiB with every optional field
// at its maximum length), so 32 shards hold 10 000 users in about 100 KiB each and stay under the
// API server's 1 MiB object limit up to roughly 25 000 maximal or 90 000 typical users per
// instance. Departments are smaller and fewer. The counts are part of the storage layout: changing
// them moves entries, so they are constants.
const (
	UserShards = 32
	OrgShards  = 8
	// shardConcurrency bounds the parallel writes of one sync, so a 500-user authSync finishes
	// well inside KooGallery's timeout without flooding the API server.
	shardConcurrency = 4
)

// errTenantNotReady is a sync that adds data before the tenant namespace exists.
var errTenantNotReady = errors.New("tenant namespace does not exist yet")

type kitStore struct {
	client client.Client
	// reader reads ConfigMaps from the API server: the manager's cache must not start an
	// informer on every ConfigMap of the cluster.
	reader client.Reader
	// calls are the kit replay records this replica last saw (kitreplay.go).
	calls kitCalls
}

// kitObject names one kit object and what kind of data it holds.
type kitObject struct {
	name   string
	data   string // LabelKitData value
	secret bool
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
}

type appRecord struct {
	TenantID     string `json:"tenantId"`
	AppID        string `json:"appId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

type userRecord struct {
	TenantID string `json:"tenantId"`
	AppID    string `json:"appId"`
	koogallery.User
	CurrentSyncTime string `json:"currentSyncTime,omitempty"`
}

type orgRecord struct {
	TenantID string `json:"tenantId"`
	koogallery.OrgInfo
}

func (k *kitStore) tenantSync(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns string, req *koogallery.TenantSyncRequest) error {
	obj := kitObject{name: KitTenantsConfigMap, data: "tenants"}
	key, _ := entryKey(1, req.TenantID)
	if req.Flag.Value == koogallery.FlagDelete {
		return k.patch(ctx, inst, ns, obj, map[string]*string{key: nil})
	}
	v, err := marshal(tenantRecord{InstanceID: inst.Spec.InstanceID, OrderID: req.OrderID, TenantID: req.TenantID,
		TenantCode: req.TenantCode, Name: req.Name, DomainName: req.DomainName})
	if err != nil {
		return err
	}
	return k.patch(ctx, inst, ns, obj, map[string]*string{key: v})
}

func (k *kitStore) applicationSync(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns string, req *koogallery.ApplicationSyncRequest, priv *rsa.PrivateKey) error {
	obj := kitObject{name: KitAppsSecret, data: "applications", secret: true}
	key, _ := entryKey(1, req.TenantID, req.AppID)
	if req.Flag.Value == koogallery.FlagDelete {
		return k.patch(ctx, inst, ns, obj, map[string]*string{key: nil})
	}
	if priv == nil {
		return errors.New("no RSA private key is configured for kit client secrets")
	}
	secret, err := koogallery.DecryptClientSecret(priv, req.ClientSecret)
	if err != nil {
		return fmt.Errorf("decrypting client secret: %w", err)
	}
	v, err := marshal(appRecord{TenantID: req.TenantID, AppID: req.AppID, ClientID: req.ClientID, ClientSecret: secret})
	if err != nil {
		return err
	}
	return k.patch(ctx, inst, ns, obj, map[string]*string{key: v})
}

// userShardEntries groups an authSync's users by shard: the value to store, or nil to delete.
func userShardEntries(req *koogallery.AuthSyncRequest) (map[int]map[string]*string, error) {
	del := req.Flag.Value == koogallery.FlagDelete || req.Flag.Value == koogallery.FlagRevoke
	shards := map[int]map[string]*string{}
	for _, u := range req.UserList {
		key, shard := entryKey(UserShards, req.TenantID, req.AppID, u.UserName)
		if shards[shard] == nil {
			shards[shard] = map[string]*string{}
		}
		if del {
			shards[shard][key] = nil
			continue
		}
		v, err := marshal(userRecord{TenantID: req.TenantID, AppID: req.AppID, User: u, CurrentSyncTime: req.CurrentSyncTime})
		if err != nil {
			return nil, err
		}
		shards[shard][key] = v
	}
	return shards, nil
}

// authSync stores (add, modify) or removes (delete, revoke) the users authorised for an app.
func (k *kitStore) authSync(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns string, req *koogallery.AuthSyncRequest) error {
	shards, err := userShardEntries(req)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, shardConcurrency)
	)
	for shard, entries := range shards {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			obj := kitObject{name: shardName(KitUsersPrefix, shard), data: "users"}
			if err := k.patch(ctx, inst, ns, obj, entries); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (k *kitStore) singleOrgSync(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns string, req *koogallery.SingleOrgSyncRequest) error {
	key, shard := entryKey(OrgShards, req.TenantID, req.OrgCode)
	obj := kitObject{name: shardName(KitOrgsPrefix, shard), data: "departments"}
	if req.Flag.Value == koogallery.FlagDelete {
		return k.patch(ctx, inst, ns, obj, map[string]*string{key: nil})
	}
	v, err := marshal(orgRecord{TenantID: req.TenantID,
		OrgInfo: koogallery.OrgInfo{OrgCode: req.OrgCode, OrgName: req.OrgName, ParentCode: req.ParentCode}})
	if err != nil {
		return err
	}
	return k.patch(ctx, inst, ns, obj, map[string]*string{key: v})
}

// allOrgSync replaces the tenant's whole department tree: entries of the tenant that the list
// no longer has are removed, so a repeated full sync leaves exactly one copy of the tree.
func (k *kitStore) allOrgSync(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns string, req *koogallery.AllOrgSyncRequest) error {
	want := make([]map[string]string, OrgShards)
	for i := range want {
		want[i] = map[string]string{}
	}
	for _, o := range req.OrgInfoList {
		key, shard := entryKey(OrgShards, req.TenantID, o.OrgCode)
		v, err := marshal(orgRecord{TenantID: req.TenantID, OrgInfo: o})
		if err != nil {
			return err
		}
		want[shard][key] = *v
	}
	for shard := range want {
		obj := kitObject{name: shardName(KitOrgsPrefix, shard), data: "departments"}
		if err := k.replaceTenant(ctx, inst, ns, obj, req.TenantID, want[shard]); err != nil {
			return err
		}
	}
	return nil
}

// patch sets (non-nil) and removes (nil) entries of one object with a JSON merge patch, which
// touches only those keys: concurrent syncs of other entries cannot be lost, and no read is
// needed. An absent object is created with the entries; removing from an absent object, or in
// an absent namespace, is done.
func (k *kitStore) patch(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns string, obj kitObject, entries map[string]*string) error {
	data := make(map[string]any, len(entries))
	sets := map[string]string{}
	for key, v := range entries {
		switch {
		case v == nil:
			data[key] = nil
		case obj.secret:
			data[key] = base64.StdEncoding.EncodeToString([]byte(*v))
			sets[key] = *v
		default:
			data[key] = *v
			sets[key] = *v
		}
	}
	body, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		return fmt.Errorf("encoding patch: %w", err)
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err := k.client.Patch(ctx, emptyObject(obj, ns), client.RawPatch(types.MergePatchType, body))
		if !apierrors.IsNotFound(err) {
			return wrapKitErr(obj, err)
		}
		if len(sets) == 0 {
			return nil
		}
		err = k.client.Create(ctx, newObject(inst, obj, ns, sets))
		switch {
		case err == nil:
			return nil
		case apierrors.IsNotFound(err):
			return errTenantNotReady
		case !apierrors.IsAlreadyExists(err):
			return wrapKitErr(obj, err)
		}
		// Created by a concurrent sync meanwhile: patch it.
	}
	return errConflicts
}

// replaceTenant makes the tenant's entries in one object exactly want, by read-modify-write
// with the object's resourceVersion (a concurrent writer makes the update conflict and the
// replacement is computed again).
func (k *kitStore) replaceTenant(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, ns string, obj kitObject, tenantID string, want map[string]string) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cm := &corev1.ConfigMap{}
		err := k.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: obj.name}, cm)
		if apierrors.IsNotFound(err) {
			if len(want) == 0 {
				return nil
			}
			err = k.client.Create(ctx, newObject(inst, obj, ns, want))
			switch {
			case err == nil:
				return nil
			case apierrors.IsNotFound(err):
				return errTenantNotReady
			case apierrors.IsAlreadyExists(err):
				continue
			}
		}
		if err != nil {
			return wrapKitErr(obj, err)
		}
		data := make(map[string]string, len(cm.Data)+len(want))
		for key, v := range cm.Data {
			if recordTenant(v) != tenantID {
				data[key] = v
			}
		}
		maps.Copy(data, want)
		if maps.Equal(data, cm.Data) {
			return nil
		}
		cm.Data = data
		err = k.client.Update(ctx, cm)
		if !apierrors.IsConflict(err) {
			return wrapKitErr(obj, err)
		}
	}
	return errConflicts
}

func recordTenant(v string) string {
	var r struct {
		TenantID string `json:"tenantId"`
	}
	_ = json.Unmarshal([]byte(v), &r) // an unreadable entry belongs to nobody and is kept
	return r.TenantID
}

func wrapKitErr(obj kitObject, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("writing %s: %w", obj.name, err)
}

func emptyObject(obj kitObject, ns string) client.Object {
	meta := metav1.ObjectMeta{Namespace: ns, Name: obj.name}
	if obj.secret {
		return &corev1.Secret{ObjectMeta: meta}
	}
	return &corev1.ConfigMap{ObjectMeta: meta}
}

// newObject is a kit object with its first entries, labelled for the operator's cache and the
// tenant app, and owned by the instance so that it goes with the tenant.
func newObject(inst *saasv1alpha1.MarketplaceInstance, obj kitObject, ns string, entries map[string]string) client.Object {
	labels := render.Labels(inst)
	labels[LabelKitData] = obj.data
	meta := metav1.ObjectMeta{
		Namespace: ns, Name: obj.name, Labels: labels,
		OwnerReferences: []metav1.OwnerReference{render.OwnerReference(inst)},
	}
	if obj.secret {
		data := make(map[string][]byte, len(entries))
		for key, v := range entries {
			data[key] = []byte(v)
		}
		return &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: data}
	}
	return &corev1.ConfigMap{ObjectMeta: meta, Data: maps.Clone(entries)}
}

func marshal(v any) (*string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding kit record: %w", err)
	}
	s := string(b)
	return &s, nil
}
