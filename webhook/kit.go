package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
)

// handleKit verifies and parses a kit sync with the kit keys, then stores its data.
func (s *Server) handleKit(ctx context.Context, _ *exchange, r *http.Request, kind koogallery.KitKind, body []byte) any {
	if err := s.verifier.VerifyKit(r.Header, body); err != nil {
		return s.rejected(ctx, "kit", err)
	}
	req, err := koogallery.ParseKitRequest(kind, body)
	if err != nil {
		return koogallery.NewReply(err)
	}
	if req.IsTest() {
		return s.debugKit(req)
	}
	return s.kitSync(ctx, req, r.Header.Get(koogallery.HeaderNonce))
}

// debugKit answers a debug sync truthfully and stores nothing. The one thing a debug
// applicationSync checks is that the client secret, encrypted by KooGallery with the public key
// the merchant registered, decrypts with our private key; so that is checked here too.
func (s *Server) debugKit(req koogallery.KitRequest) any {
	app, ok := req.(*koogallery.ApplicationSyncRequest)
	if !ok || app.Flag.Value == koogallery.FlagDelete {
		return success("debug call verified; debug syncs store nothing")
	}
	key := s.keys.KitRSAKey()
	if key == nil {
		return reply(koogallery.ResultInternalError, "no RSA private key is configured for kit client secrets")
	}
	if _, err := koogallery.DecryptClientSecret(key, app.ClientSecret); err != nil {
		return koogallery.NewReply(err)
	}
	return success("debug call verified; the client secret decrypts; debug syncs store nothing")
}

// kitSync stores a production sync in the tenant namespace of the instance it names, or, when
// it names none (the seller's own app), in the operator's namespace (sellerScope). Deletes
// succeed whatever is missing (the instance, the namespace, the entry): the spec requires that a
// delete never depends on the instance existing. Adds need the instance and its namespace.
// Nothing is read or written in a namespace that is not the instance's (tenantNamespace).
func (s *Server) kitSync(ctx context.Context, req koogallery.KitRequest, nonce string) any {
	id := kitCommon(req).InstanceID
	if id == "" {
		sc, err := s.kit.sellerScope(ctx)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "finding the namespace of the seller's own kit data")
			return internalError()
		}
		return s.storeScoped(ctx, sc, req, nonce)
	}
	del := isKitDelete(req)
	inst, err := s.findInstance(ctx, id)
	switch {
	case err != nil:
		ctrl.LoggerFrom(ctx).Error(err, "looking up the instance of a kit sync")
		return internalError()
	case (inst == nil || !inst.DeletionTimestamp.IsZero()) && del:
		return success("nothing to delete")
	case inst == nil:
		return notFound()
	case !inst.DeletionTimestamp.IsZero():
		return reply(koogallery.ResultInstanceNotFound, "the instance is being released")
	}
	ns, err := s.tenantNamespace(ctx, inst)
	if err != nil {
		return namespaceUnusable(ctx, inst, err, del)
	}
	return s.storeScoped(ctx, kitScope{inst: inst, ns: ns}, req, nonce)
}

// storeScoped stores a sync in sc once its nonce is known to be fresh: a sync whose nonce another
// replica has stored already is refused as a replay (see KitCallsConfigMap).
func (s *Server) storeScoped(ctx context.Context, sc kitScope, req koogallery.KitRequest, nonce string) any {
	log := ctrl.LoggerFrom(ctx).WithValues("namespace", sc.ns)
	if sc.inst != nil {
		log = log.WithValues("marketplaceInstance", sc.inst.Name)
	}
	now := s.opts.Clock()
	fresh, err := s.kit.admitKitCall(ctx, sc.inst, sc.ns, nonce, now, now.Add(2*s.opts.TimestampWindow))
	switch {
	case err != nil:
		log.Error(err, "recording a kit nonce")
		return internalError()
	case !fresh:
		return s.rejected(ctx, "kit", &koogallery.Error{Code: koogallery.ResultAuthFailed, Kind: koogallery.KindReplayedNonce, Reason: "nonce was already used"})
	}
	err = s.storeKit(ctx, sc, req)
	var (
		perr  *koogallery.Error
		stale *notApplied
	)
	switch {
	case err == nil:
		return success("success")
	case errors.As(err, &stale):
		// Answered success all the same: KooGallery calling again would change nothing.
		return success("success; " + stale.Error())
	case errors.Is(err, errTenantNotReady):
		return tenantNotReady()
	case errors.As(err, &perr):
		return koogallery.NewReply(err)
	}
	log.Error(err, "storing kit data", "sync", string(req.Kind()))
	return internalError()
}

// namespaceUnusable answers a sync whose tenant namespace cannot be written: a delete has
// nothing of the instance's to remove there, an add must wait for the namespace (or for a person
// to settle whose it is).
func namespaceUnusable(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, err error, del bool) any {
	log := ctrl.LoggerFrom(ctx).WithValues("marketplaceInstance", inst.Name)
	switch {
	case del && (errors.Is(err, errTenantNotReady) || errors.Is(err, errNamespaceNotOurs)):
		return success("nothing to delete")
	case errors.Is(err, errTenantNotReady):
		return tenantNotReady()
	case errors.Is(err, errNamespaceNotOurs):
		log.Info("tenant namespace belongs to another instance; kit sync not stored", "namespace", render.NamespaceName(inst.Name))
		return reply(koogallery.ResultInternalError, "the tenant namespace of this instance belongs to another one; see the instance's conditions")
	}
	log.Error(err, "reading the tenant namespace of a kit sync")
	return internalError()
}

func tenantNotReady() koogallery.Reply {
	return reply(koogallery.ResultInternalError, "the tenant namespace does not exist yet; retry once the instance is provisioned")
}

func (s *Server) storeKit(ctx context.Context, sc kitScope, req koogallery.KitRequest) error {
	switch req := req.(type) {
	case *koogallery.TenantSyncRequest:
		return s.kit.tenantSync(ctx, sc, req)
	case *koogallery.ApplicationSyncRequest:
		return s.kit.applicationSync(ctx, sc, req, s.keys.KitRSAKey())
	case *koogallery.AuthSyncRequest:
		return s.kit.authSync(ctx, sc, req)
	case *koogallery.SingleOrgSyncRequest:
		return s.kit.singleOrgSync(ctx, sc, req)
	case *koogallery.AllOrgSyncRequest:
		return s.kit.allOrgSync(ctx, sc, req)
	}
	return errors.New("unknown kit sync")
}

// errNamespaceNotOurs is a tenant namespace name taken by a namespace another instance owns.
var errNamespaceNotOurs = errors.New("the tenant namespace belongs to another instance")

// tenantNamespace is the namespace that holds the kit data of inst: the name the reconciler
// derives from the instance's name, never status.namespace (whoever may patch an instance's
// status could point that at another tenant's namespace), and only once that namespace exists
// and is the instance's (its controller reference names it; a crafted instance name can derive
// another tenant's namespace). errTenantNotReady when it does not exist, errNamespaceNotOurs
// when it is another instance's.
func (s *Server) tenantNamespace(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) (string, error) {
	name := render.NamespaceName(inst.Name)
	ns := &corev1.Namespace{}
	err := s.getCachedOrFresh(ctx, client.ObjectKey{Name: name}, ns)
	switch {
	case apierrors.IsNotFound(err):
		return "", errTenantNotReady
	case err != nil:
		return "", fmt.Errorf("getting tenant namespace: %w", err)
	case !render.OwnedBy(ns, inst):
		return "", errNamespaceNotOurs
	}
	return name, nil
}

func kitCommon(req koogallery.KitRequest) *koogallery.KitCommon {
	switch r := req.(type) {
	case *koogallery.TenantSyncRequest:
		return &r.KitCommon
	case *koogallery.ApplicationSyncRequest:
		return &r.KitCommon
	case *koogallery.AuthSyncRequest:
		return &r.KitCommon
	case *koogallery.SingleOrgSyncRequest:
		return &r.KitCommon
	case *koogallery.AllOrgSyncRequest:
		return &r.KitCommon
	}
	return &koogallery.KitCommon{}
}

// isKitDelete reports a sync that only removes data (delete, or revoke authorisation).
func isKitDelete(req koogallery.KitRequest) bool {
	var flag koogallery.Int
	switch r := req.(type) {
	case *koogallery.TenantSyncRequest:
		flag = r.Flag
	case *koogallery.ApplicationSyncRequest:
		flag = r.Flag
	case *koogallery.AuthSyncRequest:
		flag = r.Flag
	case *koogallery.SingleOrgSyncRequest:
		flag = r.Flag
	default:
		return false
	}
	return flag.Value == koogallery.FlagDelete || flag.Value == koogallery.FlagRevoke
}
