//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/render"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// The bare client "with the custom resource" keeps, for each tenant, what the architecture asks
// of any operator beside the tenant's objects: the custom resource the order becomes, its status
// written once when the tenant is applied (the inventory) and once when it is Ready, an Event on
// that transition, and children whose controller reference points at it. It writes them to a
// copy of the MarketplaceInstance CRD under another group, so that the API server does the same
// work for each write (same schema, same validation) while the operator never sees them. The
// operator's own side beyond that (the signed callback, Query Order, its cache and reconcile
// passes) is what the ratio against this client leaves.
var bareCRGVK = schema.GroupVersionKind{Group: "bench.marketplace.dev", Version: "v1alpha1", Kind: "BareInstance"}

const bareCRDName = "bareinstances.bench.marketplace.dev"

// installBareCRD creates the copy of the MarketplaceInstance CRD, at set-up (awaitGCMonitors
// then waits until the garbage collector watches it).
func (b *bench) installBareCRD() {
	raw, err := os.ReadFile(filepath.Join(b.root, "config", "crd", "bases", "saas.marketplace.dev_marketplaceinstances.yaml"))
	if err != nil {
		b.t.Fatal(err)
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &crd.Object); err != nil {
		b.t.Fatal(err)
	}
	crd.SetName(bareCRDName)
	must := func(err error) {
		if err != nil {
			b.t.Fatal(err)
		}
	}
	must(unstructured.SetNestedField(crd.Object, bareCRGVK.Group, "spec", "group"))
	must(unstructured.SetNestedMap(crd.Object, map[string]any{
		"kind": bareCRGVK.Kind, "listKind": bareCRGVK.Kind + "List", "plural": "bareinstances", "singular": "bareinstance",
	}, "spec", "names"))
	if err := b.cluster.Admin.Create(b.ctx, crd); err != nil {
		b.t.Fatal(err)
	}
	if err := rig.WaitEstablished(b.ctx, b.cluster.Admin, bareCRDName); err != nil {
		b.t.Fatal(err)
	}
}

// awaitGCMonitors waits until the garbage collector watches the MarketplaceInstance and
// BareInstance kinds. It finds new resources by discovery every 30 s; until then it has seen no
// owner of that kind, and checks each new child's owner with a GET of both, a cost of that
// window, not of the operator, that would fall into the first run. A foreground deletion ends
// only once the collector has seen it, so the probe of each kind is one such deletion. It runs
// before the operator starts, which would otherwise reconcile the probe instance.
func (b *bench) awaitGCMonitors() {
	for _, gvk := range []schema.GroupVersionKind{saasv1alpha1.GroupVersion.WithKind("MarketplaceInstance"), bareCRGVK} {
		probe, err := asKind(bareInstance("GCPROBE", 0), gvk)
		if err != nil {
			b.t.Fatal(err)
		}
		if err := b.cluster.Admin.Create(b.ctx, probe); err != nil {
			b.t.Fatal(err)
		}
		if err := b.cluster.Admin.Delete(b.ctx, probe, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
			b.t.Fatal(err)
		}
		start := time.Now()
		NewWithT(b.t).Eventually(func() bool {
			return apierrors.IsNotFound(b.cluster.Admin.Get(b.ctx, client.ObjectKeyFromObject(probe), probe))
		}).WithTimeout(2*time.Minute).WithPolling(250*time.Millisecond).Should(BeTrue(),
			"the garbage collector did not finish a foreground deletion of a %s", gvk.Kind)
		b.t.Logf("the garbage collector watches %s (%s)", gvk.Kind, time.Since(start).Round(100*time.Millisecond))
	}
}

// newBareCR is the custom resource the endpoint would create for inst: its label, the call
// recorded in its annotation, its finalizer.
func newBareCR(inst *saasv1alpha1.MarketplaceInstance) (*unstructured.Unstructured, error) {
	calls, err := saasv1alpha1.EncodeCalls([]saasv1alpha1.Operation{creationCall(inst)})
	if err != nil {
		return nil, err
	}
	cr := inst.DeepCopy()
	cr.Labels = map[string]string{webhook.LabelInstanceIDHash: webhook.InstanceIDHash(inst.Spec.InstanceID)}
	cr.Annotations = map[string]string{saasv1alpha1.AnnotationCalls: calls}
	cr.Finalizers = []string{saasv1alpha1.FinalizerRelease}
	return asKind(cr, bareCRGVK)
}

// asKind is inst as an unstructured object of another kind, as it is written: without the
// creation time and the status the API server sets.
func asKind(inst *saasv1alpha1.MarketplaceInstance, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	u, err := toWritten(inst)
	if err != nil {
		return nil, err
	}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

func creationCall(inst *saasv1alpha1.MarketplaceInstance) saasv1alpha1.Operation {
	return saasv1alpha1.Operation{Time: metav1.Now(), Activity: "newInstance", OrderID: inst.Spec.Order.OrderID,
		Detail: "created for order line " + inst.Spec.Order.OrderLineID, RequestTimestamp: time.Now().UnixMilli(),
		Result: koogallery.ResultProcessing}
}

// provisioningStatus is the status the reconciler writes once a tenant is applied and its
// Deployment is not Available yet: the resolved order, the plan, the inventory, the conditions.
func provisioningStatus(inst *saasv1alpha1.MarketplaceInstance, plan *saasv1alpha1.MarketplacePlan, inventory []saasv1alpha1.ResourceRef) saasv1alpha1.MarketplaceInstanceStatus {
	now := metav1.Now()
	expire := metav1.NewTime(now.AddDate(0, 1, 0))
	ns := render.NamespaceName(inst.Name)
	s := saasv1alpha1.MarketplaceInstanceStatus{
		ObservedGeneration: 1, Phase: "Provisioning", Plan: plan.Name, Namespace: ns, ExpireTime: &expire,
		Order: &saasv1alpha1.ResolvedOrder{OrderID: inst.Spec.Order.OrderID, OrderLineID: inst.Spec.Order.OrderLineID,
			OrderType: "NEW", ProductID: "OFFI000000000000001", SKUCode: "demo-basic-monthly", ChargingMode: "PERIOD",
			PeriodType: "month", PeriodNum: 1, ExpireTime: &expire, CheckedTime: &now},
		Resources:            inventory,
		CredentialsSecretRef: &saasv1alpha1.SecretReference{Name: render.CredentialsSecretName, Namespace: ns},
		History:              []saasv1alpha1.Operation{creationCall(inst)},
	}
	for _, c := range []metav1.Condition{
		{Type: saasv1alpha1.ConditionOrderResolved, Status: metav1.ConditionTrue, Reason: "Resolved",
			Message: fmt.Sprintf("order %s (SKU demo-basic-monthly) is served by plan %s", inst.Spec.Order.OrderID, plan.Name)},
		{Type: saasv1alpha1.ConditionFrozen, Status: metav1.ConditionFalse, Reason: "Active", Message: "the tenant is active"},
		{Type: saasv1alpha1.ConditionProvisioned, Status: metav1.ConditionFalse, Reason: saasv1alpha1.ReasonProvisioning,
			Message: "waiting for Deployment web on plan " + plan.Name},
		{Type: saasv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: saasv1alpha1.ReasonProvisioning,
			Message: "waiting for Deployment web on plan " + plan.Name},
	} {
		c.ObservedGeneration = 1
		meta.SetStatusCondition(&s.Conditions, c)
	}
	return s
}

// writeReady is the reconciler's pass on a tenant whose Deployment became Available: Provisioned
// and Ready, the app's addresses, one status patch, then the Event of the transition.
func writeReady(ctx context.Context, c client.Client, cr *unstructured.Unstructured, status saasv1alpha1.MarketplaceInstanceStatus) error {
	base := cr.DeepCopy()
	msg := fmt.Sprintf("tenant %s on plan %s is available", status.Namespace, status.Plan)
	for _, t := range []string{saasv1alpha1.ConditionProvisioned, saasv1alpha1.ConditionReady} {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{Type: t, Status: metav1.ConditionTrue,
			Reason: saasv1alpha1.ReasonAvailable, Message: msg, ObservedGeneration: 1})
	}
	status.Phase = "Ready"
	status.AppInfo = &saasv1alpha1.AppInfo{FrontEndURL: "https://" + cr.GetName() + ".apps.example.com/",
		AdminURL: "https://" + cr.GetName() + ".apps.example.com/admin"}
	if err := setStatus(cr, status); err != nil {
		return err
	}
	if err := c.Status().Patch(ctx, cr, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("patching %s's status to Ready: %w", cr.GetName(), err)
	}
	now := time.Now()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", cr.GetName(), now.UnixNano()), Namespace: metav1.NamespaceDefault},
		EventTime:  metav1.NewMicroTime(now), ReportingController: "marketplace-operator", ReportingInstance: "marketplace-operator-bench",
		Action: saasv1alpha1.ConditionReady, Reason: saasv1alpha1.ReasonAvailable, Type: corev1.EventTypeNormal,
		Note:      fmt.Sprintf("%s=%s: %s", saasv1alpha1.ConditionReady, metav1.ConditionTrue, msg),
		Regarding: corev1.ObjectReference{APIVersion: cr.GetAPIVersion(), Kind: cr.GetKind(), Name: cr.GetName(), UID: cr.GetUID(), ResourceVersion: cr.GetResourceVersion()},
	}
	if err := c.Create(ctx, ev); err != nil {
		return fmt.Errorf("recording %s's Ready event: %w", cr.GetName(), err)
	}
	return nil
}

// setStatus replaces cr's status with s.
func setStatus(cr *unstructured.Unstructured, s saasv1alpha1.MarketplaceInstanceStatus) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&s)
	if err != nil {
		return err
	}
	cr.Object["status"] = m
	return nil
}

// removeBareCRs deletes every bare custom resource (their finalizer first) and waits until they
// are gone.
func (b *bench) removeBareCRs() {
	c := b.plainClient()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(bareCRGVK.GroupVersion().WithKind(bareCRGVK.Kind + "List"))
	if err := c.List(b.ctx, list); err != nil {
		b.t.Fatal(err)
	}
	for i := range list.Items {
		cr := &list.Items[i]
		if err := c.Patch(b.ctx, cr, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))); client.IgnoreNotFound(err) != nil {
			b.t.Fatal(err)
		}
		if err := c.Delete(b.ctx, cr); client.IgnoreNotFound(err) != nil {
			b.t.Fatal(err)
		}
	}
	NewWithT(b.t).Eventually(func() (int, error) {
		err := c.List(b.ctx, list)
		return len(list.Items), err
	}).WithTimeout(15*time.Minute).WithPolling(2*time.Second).Should(BeZero(), "bare custom resources left")
}
