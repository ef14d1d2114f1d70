package webhook

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// Field indexes on MarketplaceInstance.
const (
	// InstanceIDIndex indexes instances by spec.instanceId: every call but newInstance names
	// its instance that way.
	InstanceIDIndex = "spec.instanceId"
	// OrderIDIndex indexes instances by the orders they come from (spec.order and
	// spec.currentOrder), for orderNotify.
	OrderIDIndex = "spec.orderIds"
)

// RegisterIndexes registers the webhook's field indexes; NewServer calls it with the manager's
// field indexer, which is the manager's cache. Its names differ from the reconciler's, so both can
// register on one manager. When idx can also be read (the manager's cache can), the
// marketplace_unresolved_instances gauge reads it at scrape time (see unresolvedCollector).
func RegisterIndexes(ctx context.Context, idx client.FieldIndexer) error {
	if err := idx.IndexField(ctx, &saasv1alpha1.MarketplaceInstance{}, InstanceIDIndex, indexInstanceID); err != nil {
		return fmt.Errorf("indexing instances by instanceId: %w", err)
	}
	if err := idx.IndexField(ctx, &saasv1alpha1.MarketplaceInstance{}, OrderIDIndex, indexOrderIDs); err != nil {
		return fmt.Errorf("indexing instances by order: %w", err)
	}
	if err := idx.IndexField(ctx, &saasv1alpha1.MarketplaceInstance{}, UnresolvedIndex, indexUnresolved); err != nil {
		return fmt.Errorf("indexing instances by unresolved order: %w", err)
	}
	if r, ok := idx.(client.Reader); ok {
		unresolved.readFrom(r)
	}
	return nil
}

func indexInstanceID(o client.Object) []string {
	return []string{o.(*saasv1alpha1.MarketplaceInstance).Spec.InstanceID}
}

func indexOrderIDs(o client.Object) []string {
	i := o.(*saasv1alpha1.MarketplaceInstance)
	keys := []string{i.Spec.Order.OrderID}
	if co := i.Spec.CurrentOrder; co != nil && co.OrderID != i.Spec.Order.OrderID {
		keys = append(keys, co.OrderID)
	}
	return keys
}

// findInstances returns the instances with the given instance IDs; absent ones are missing from
// the map. The cache answers first. The IDs it does not know are asked of the API server in one
// List by the instance-ID hash label, because the cache can lag a create by a few milliseconds
// and a false 000003 to a renewal may get the buyer's service released.
func (s *Server) findInstances(ctx context.Context, ids []string) (map[string]*saasv1alpha1.MarketplaceInstance, error) {
	found := make(map[string]*saasv1alpha1.MarketplaceInstance, len(ids))
	var missing []string
	for _, id := range ids {
		list := &saasv1alpha1.MarketplaceInstanceList{}
		if err := s.client.List(ctx, list, client.MatchingFields{InstanceIDIndex: id}); err != nil {
			return nil, fmt.Errorf("listing instances by instanceId: %w", err)
		}
		if inst := pick(list.Items); inst != nil {
			found[id] = inst
			continue
		}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return found, nil
	}
	return found, s.findLive(ctx, missing, found)
}

func (s *Server) findLive(ctx context.Context, ids []string, found map[string]*saasv1alpha1.MarketplaceInstance) error {
	hashes := make([]string, 0, len(ids))
	byHash := make(map[string]string, len(ids))
	for _, id := range ids {
		h := InstanceIDHash(id)
		hashes = append(hashes, h)
		byHash[h] = id
	}
	req, err := labels.NewRequirement(LabelInstanceIDHash, selection.In, hashes)
	if err != nil {
		return fmt.Errorf("building instance selector: %w", err)
	}
	list := &saasv1alpha1.MarketplaceInstanceList{}
	if err := s.reader.List(ctx, list, client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}); err != nil {
		return fmt.Errorf("listing instances by instanceId hash: %w", err)
	}
	for i := range list.Items {
		inst := &list.Items[i]
		if id := byHash[inst.Labels[LabelInstanceIDHash]]; id != "" && id == inst.Spec.InstanceID && found[id] == nil {
			found[id] = inst
		}
	}
	return nil
}

// findInstance returns the instance with the instance ID, or nil.
func (s *Server) findInstance(ctx context.Context, id string) (*saasv1alpha1.MarketplaceInstance, error) {
	found, err := s.findInstances(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	return found[id], nil
}

// pick chooses among instances sharing an instance ID (only possible when made by hand): the
// oldest, which is the one KooGallery was first told about.
func pick(items []saasv1alpha1.MarketplaceInstance) *saasv1alpha1.MarketplaceInstance {
	var best *saasv1alpha1.MarketplaceInstance
	for i := range items {
		if best == nil || items[i].CreationTimestamp.Before(&best.CreationTimestamp) {
			best = &items[i]
		}
	}
	return best
}

// getCachedOrFresh reads obj from the cache and, when the cache does not have it, from the API
// server: the cache may lag a create by another replica or the reconciler, or not hold the
// object's kind or labels at all.
func (s *Server) getCachedOrFresh(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	err := s.client.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		err = s.reader.Get(ctx, key, obj)
	}
	return err
}

// getByName reads an instance by name: from the cache, else from the API server (right after
// another replica created it, the cache may not have it yet). Nil when it does not exist.
func (s *Server) getByName(ctx context.Context, name string) (*saasv1alpha1.MarketplaceInstance, error) {
	inst := &saasv1alpha1.MarketplaceInstance{}
	err := s.getCachedOrFresh(ctx, client.ObjectKey{Name: name}, inst)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("getting instance %s: %w", name, err)
	}
	return inst, nil
}
