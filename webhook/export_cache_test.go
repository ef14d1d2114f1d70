package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// CachedInstance reads an instance as the endpoint sees it, from its cache only: a test that
// changes an instance waits on it before calling, so the call cannot be answered from an older
// copy.
func (s *Server) CachedInstance(ctx context.Context, name string) (*saasv1alpha1.MarketplaceInstance, error) {
	inst := &saasv1alpha1.MarketplaceInstance{}
	if err := s.client.Get(ctx, client.ObjectKey{Name: name}, inst); err != nil {
		return nil, err
	}
	return inst, nil
}
