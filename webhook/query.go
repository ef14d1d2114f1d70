package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
)

const debugMemo = "KooGallery debug call: verified and answered; no tenant is provisioned for debug calls."

// queryInstance answers up to 100 instance IDs from the cache. appInfo (the URLs and memo from
// status and the credentials from the tenant's Secret) is given for Ready and frozen instances. A single instance
// still provisioning answers 000004; none found answers 000003; a batch answers 000000 with an
// entry for each instance that exists. Debug queries are answered the same way, read-only, plus
// the debug instances that debug creates answered.
func (s *Server) queryInstance(ctx context.Context, c *call, req *koogallery.QueryInstanceRequest) any {
	ids, err := req.InstanceIDs()
	if err != nil {
		return koogallery.NewReply(err)
	}
	found, err := s.findInstances(ctx, ids)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "looking up queried instances")
		return internalError()
	}
	out := koogallery.QueryInstanceReply{Reply: success("success"), EncryptType: s.opts.AppInfoEncryptType}
	provisioning := false
	for _, id := range ids {
		inst := found[id]
		if inst == nil {
			if req.IsTest() && isDebugInstanceID(id) {
				out.Info = append(out.Info, koogallery.InstanceInfo{InstanceID: id,
					AppInfo: &koogallery.AppInfo{FrontEndURL: s.opts.DebugFrontEndURL, Memo: debugMemo}})
			}
			continue
		}
		info, st, err := s.instanceInfo(ctx, inst)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "reading instance credentials", "marketplaceInstance", inst.Name)
			return internalError()
		}
		provisioning = st.kind == stateProvisioning
		info.UsageInfo = s.usageInfo(ctx, inst)
		out.Info = append(out.Info, info)
	}
	switch {
	case len(out.Info) == 0:
		return notFound()
	case len(ids) == 1 && provisioning:
		return reply(koogallery.ResultProcessing, "instance is being provisioned")
	}
	return out
}

// instanceInfo is one entry of the reply: appInfo (URLs, account, the plan's memo) once the
// instance was Ready. A frozen instance keeps answering it: the buyer who opens the purchased
// service still sees what they bought and where (the site itself is closed until renewal).
func (s *Server) instanceInfo(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) (koogallery.InstanceInfo, instanceState, error) {
	info := koogallery.InstanceInfo{InstanceID: inst.Spec.InstanceID}
	st := stateOf(inst)
	if (st.kind != stateReady && st.kind != stateInactive) || inst.Status.AppInfo == nil {
		return info, st, nil
	}
	app := &koogallery.AppInfo{FrontEndURL: inst.Status.AppInfo.FrontEndURL, AdminURL: inst.Status.AppInfo.AdminURL, Memo: inst.Status.AppInfo.Memo}
	user, password, err := s.credentials(ctx, inst)
	if err != nil {
		return info, st, err
	}
	if app.UserName, err = s.encrypt(user); err != nil {
		return info, st, err
	}
	if app.Password, err = s.encrypt(password); err != nil {
		return info, st, err
	}
	info.AppInfo = app
	return info, st, nil
}

// credentials reads the buyer's admin account from the tenant's Secret, which the manager's
// cache holds because it carries the instance label. The Secret is addressed by the names the
// reconciler derives from the instance's name, never by status.credentialsSecretRef: whoever may
// patch an instance's status could point that at another tenant's Secret. A Secret at that name
// which is not the instance's (its controller reference names another instance: a crafted name
// whose namespace is another tenant's) is treated as missing. A missing Secret answers the URLs
// alone.
func (s *Server) credentials(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance) (user, password string, err error) {
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: render.NamespaceName(inst.Name), Name: render.CredentialsSecretName}
	err = s.client.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		return "", "", nil
	case err != nil:
		return "", "", fmt.Errorf("getting credentials secret: %w", err)
	case !render.OwnedBy(secret, inst):
		ctrl.LoggerFrom(ctx).Info("credentials Secret belongs to another instance; answering without credentials",
			"marketplaceInstance", inst.Name, "namespace", key.Namespace)
		return "", "", nil
	}
	return string(secret.Data[render.CredentialsUserNameKey]), string(secret.Data[render.CredentialsPasswordKey]), nil
}

// encrypt applies the configured appInfo encryption (§3) with the basic key.
func (s *Server) encrypt(v string) (string, error) {
	if v == "" || s.opts.AppInfoEncryptType == koogallery.EncryptNone {
		return v, nil
	}
	out, err := koogallery.EncryptCredential(string(s.basicKey()), s.opts.AppInfoEncryptType, v, "")
	if err != nil {
		return "", fmt.Errorf("encrypting appInfo: %w", err)
	}
	return out, nil
}
