package webhook

import (
	"context"
	"net"
)

// ServeOn serves on a listener the caller owns: the external tests then know the address and
// can open raw connections to it, which Start, binding its own, does not allow.
func (s *Server) ServeOn(ctx context.Context, ln net.Listener) error { return s.serve(ctx, ln) }
