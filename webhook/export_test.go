package webhook

import (
	"context"
	"net"
	"time"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// ServeOn serves on a listener the caller owns: the external tests then know the address and
// can open raw connections to it, which Start, binding its own, does not allow.
func (s *Server) ServeOn(ctx context.Context, ln net.Listener) error { return s.serve(ctx, ln) }

// Record appends a call of the activity signed at ts to the instance's history, as a handled
// call does.
func (s *Server) Record(ctx context.Context, inst *saasv1alpha1.MarketplaceInstance, activity string, ts time.Time) error {
	return s.record(ctx, &call{activity: activity, ts: ts.UnixMilli(), now: ts}, inst, saasv1alpha1.Operation{})
}
