package fakemerchant

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

const maxBody = 64 << 10

// Config configures a Server.
type Config struct {
	BasicKey, KitKey []byte
	// Clock is the verifier's clock; time.Now when nil.
	Clock func() time.Time
	// ReadyAfterPolls is how many queryInstance polls answer 000004 before the instance is ready.
	ReadyAfterPolls int
}

// Instance is the fake state of one instance.
type Instance struct {
	ID, OrderID, OrderLineID string
	Polls                    int
	Ready, Frozen, Released  bool
	ExpireTime               time.Time
}

// Server is the fake production interface; it is an http.Handler safe for concurrent use.
type Server struct {
	cfg      Config
	verifier *koogallery.Verifier

	mu        sync.Mutex
	byOrder   map[string]string
	instances map[string]*Instance
	fail      map[string][]string
}

// New returns a Server.
func New(cfg Config) *Server {
	return &Server{
		cfg: cfg,
		verifier: koogallery.NewVerifier(koogallery.VerifierConfig{
			BasicKeys: koogallery.StaticKeys{cfg.BasicKey}, KitKeys: koogallery.StaticKeys{cfg.KitKey}, Clock: cfg.Clock,
		}),
		byOrder: map[string]string{}, instances: map[string]*Instance{}, fail: map[string][]string{},
	}
}

// FailNext makes the next n calls of activity answer with code instead of being handled.
func (s *Server) FailNext(activity string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.fail[activity] = append(s.fail[activity], code)
	}
}

// Instance returns a copy of an instance's state.
func (s *Server) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		return Instance{}, false
	}
	return *in, true
}

// ServeHTTP verifies and answers one call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	if kind, ok := koogallery.KitKindFromPath(r.URL.Path); ok {
		s.reply(w, s.cfg.KitKey, s.kit(kind, r.Header, body))
		return
	}
	s.reply(w, s.cfg.BasicKey, s.basic(r, body))
}

func (s *Server) reply(w http.ResponseWriter, key []byte, v any) {
	if err := koogallery.WriteReply(w, key, v); err != nil {
		http.Error(w, "writing reply", http.StatusInternalServerError)
	}
}

func (s *Server) kit(kind koogallery.KitKind, h http.Header, body []byte) any {
	if err := s.verifier.VerifyKit(h, body); err != nil {
		return koogallery.NewReply(err)
	}
	_, err := koogallery.ParseKitRequest(kind, body)
	return koogallery.NewReply(err)
}

func (s *Server) basic(r *http.Request, body []byte) any {
	if err := s.verifier.VerifyBasic(r.URL.Query(), body); err != nil {
		return koogallery.NewReply(err)
	}
	req, err := koogallery.ParseBasicRequest(body)
	if err != nil {
		return koogallery.NewReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if codes := s.fail[req.ActivityName()]; len(codes) > 0 {
		s.fail[req.ActivityName()] = codes[1:]
		return koogallery.Reply{ResultCode: codes[0], ResultMsg: "injected failure"}
	}
	switch req := req.(type) {
	case *koogallery.NewInstanceRequest:
		return s.create(req)
	case *koogallery.QueryInstanceRequest:
		return s.query(req)
	case *koogallery.RefreshInstanceRequest:
		return s.update(req.InstanceID, func(in *Instance) { in.ExpireTime, _ = req.ExpireAt() })
	case *koogallery.UpdateInstanceStatusRequest:
		return s.update(req.InstanceID, func(in *Instance) { in.Frozen = req.Status == koogallery.StatusFreeze })
	case *koogallery.UpgradeInstanceRequest:
		return s.update(req.InstanceID, func(in *Instance) { in.OrderID, in.OrderLineID = req.OrderID, req.OrderLineID })
	case *koogallery.ChangeInstanceCheckRequest:
		return s.update(req.InstanceID, func(*Instance) {})
	case *koogallery.ReleaseInstanceRequest:
		return s.update(req.InstanceID, func(in *Instance) { in.Released = true })
	}
	return koogallery.NewReply(nil)
}

// create is idempotent on orderId + orderLineId and names the instance after the first call's
// businessId, as the spec recommends.
func (s *Server) create(req *koogallery.NewInstanceRequest) any {
	key := req.OrderID + "/" + req.OrderLineID
	id, ok := s.byOrder[key]
	if !ok {
		id = req.BusinessID
		s.byOrder[key] = id
		s.instances[id] = &Instance{ID: id, OrderID: req.OrderID, OrderLineID: req.OrderLineID, Ready: s.cfg.ReadyAfterPolls <= 0}
	}
	code := koogallery.ResultProcessing
	if s.instances[id].Ready {
		code = koogallery.ResultSuccess
	}
	return koogallery.NewInstanceReply{Reply: koogallery.Reply{ResultCode: code, ResultMsg: "accepted"}, InstanceID: id}
}

func (s *Server) query(req *koogallery.QueryInstanceRequest) any {
	ids, _ := req.InstanceIDs() // validated by ParseBasicRequest
	reply := koogallery.QueryInstanceReply{Reply: koogallery.NewReply(nil)}
	for _, id := range ids {
		in, ok := s.instances[id]
		if !ok || in.Released {
			continue
		}
		in.Polls++
		if !in.Ready && in.Polls > s.cfg.ReadyAfterPolls {
			in.Ready = true
		}
		info := koogallery.InstanceInfo{InstanceID: id}
		if in.Ready {
			info.AppInfo = &koogallery.AppInfo{
				FrontEndURL: fmt.Sprintf("https://%s.tenants.example.com/", strings.ToLower(id)),
				UserName:    "admin", Password: "initial-password", Memo: "租户已就绪",
			}
		}
		reply.Info = append(reply.Info, info)
	}
	switch {
	case len(reply.Info) == 0:
		return koogallery.Reply{ResultCode: koogallery.ResultInstanceNotFound, ResultMsg: "instance not found"}
	case len(ids) == 1 && reply.Info[0].AppInfo == nil:
		return koogallery.Reply{ResultCode: koogallery.ResultProcessing, ResultMsg: "provisioning"}
	}
	return reply
}

// update applies fn to a known instance. A released instance answers success again, because a
// repeated release must be harmless.
func (s *Server) update(id string, fn func(*Instance)) any {
	in, ok := s.instances[id]
	if !ok {
		return koogallery.Reply{ResultCode: koogallery.ResultInstanceNotFound, ResultMsg: "instance not found"}
	}
	if !in.Released {
		fn(in)
	}
	return koogallery.NewReply(nil)
}
