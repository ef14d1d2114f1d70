package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// CreateResult is the outcome of NewInstance: the instance ID from the create reply and the
// instance information the merchant finally returned.
type CreateResult struct {
	InstanceID string
	// CreateCode is the create reply's result code: 000000 (synchronous) or 000004 (async).
	CreateCode     string
	CreateAttempts int
	CreateLatency  time.Duration
	// Polls is the number of queryInstance calls until the instance was ready.
	Polls int
	// Final is the queryInstance reply that carried the appInfo.
	Final *koogallery.QueryInstanceReply
	Info  koogallery.InstanceInfo
}

// NewInstance sends newInstance as KooGallery does: retried on the create schedule until the
// merchant answers 000000 or 000004, then queryInstance is polled until it returns the
// instance's appInfo or the poll timeout passes.
func (s *Simulator) NewInstance(ctx context.Context, req koogallery.NewInstanceRequest) (*CreateResult, error) {
	resp, err := s.send(ctx, &req, func(code string) bool {
		return code == koogallery.ResultSuccess || code == koogallery.ResultProcessing
	})
	if err != nil {
		return nil, err
	}
	var reply koogallery.NewInstanceReply
	if err := json.Unmarshal(resp.Body, &reply); err != nil || reply.InstanceID == "" {
		return nil, &CallError{Activity: koogallery.ActivityNewInstance, Attempts: resp.Attempts, HTTPStatus: resp.HTTPStatus,
			ResultCode: resp.Reply.ResultCode, Reason: "reply has no instanceId"}
	}
	res := &CreateResult{InstanceID: reply.InstanceID, CreateCode: reply.ResultCode, CreateAttempts: resp.Attempts, CreateLatency: resp.Latency}
	return res, s.pollReady(ctx, res, req.TestFlag)
}

// pollReady queries the instance until it is ready. A synchronous create is queried at once; an
// asynchronous one after the first interval.
func (s *Simulator) pollReady(ctx context.Context, res *CreateResult, flag koogallery.TestFlag) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PollTimeout)
	defer cancel()
	if res.CreateCode == koogallery.ResultProcessing {
		if err := wait(ctx, s.cfg.PollInterval); err != nil {
			return fmt.Errorf("polling %s: %w", res.InstanceID, err)
		}
	}
	for {
		res.Polls++
		reply, err := s.QueryInstance(ctx, flag, res.InstanceID)
		if err == nil {
			if info, ok := readyInfo(reply, res.InstanceID); ok {
				res.Final, res.Info = reply, info
				return nil
			}
		}
		if werr := wait(ctx, s.cfg.PollInterval); werr != nil {
			if err == nil {
				err = errors.New("instance not ready")
			}
			return fmt.Errorf("polling %s: %w (last: %w)", res.InstanceID, werr, err)
		}
	}
}

func readyInfo(reply *koogallery.QueryInstanceReply, id string) (koogallery.InstanceInfo, bool) {
	if reply.ResultCode != koogallery.ResultSuccess {
		return koogallery.InstanceInfo{}, false
	}
	for _, in := range reply.Info {
		if in.InstanceID == id && in.AppInfo != nil {
			return in, true
		}
	}
	return koogallery.InstanceInfo{}, false
}

// QueryInstance sends one queryInstance for the IDs and accepts 000000 and 000004 (still
// provisioning). It is not retried: KooGallery polls it instead.
func (s *Simulator) QueryInstance(ctx context.Context, flag koogallery.TestFlag, ids ...string) (*koogallery.QueryInstanceReply, error) {
	req := &koogallery.QueryInstanceRequest{InstanceID: strings.Join(ids, ","), TestFlag: flag}
	resp, err := s.send(ctx, req, func(code string) bool {
		return code == koogallery.ResultSuccess || code == koogallery.ResultProcessing
	})
	if err != nil {
		return nil, err
	}
	var reply koogallery.QueryInstanceReply
	if err := json.Unmarshal(resp.Body, &reply); err != nil {
		return nil, &CallError{Activity: koogallery.ActivityQueryInstance, Attempts: resp.Attempts, HTTPStatus: resp.HTTPStatus,
			ResultCode: resp.Reply.ResultCode, Reason: "reply does not decode"}
	}
	return &reply, nil
}

// RefreshInstance sends refreshInstance (renewal and the other scenes).
func (s *Simulator) RefreshInstance(ctx context.Context, req koogallery.RefreshInstanceRequest) (*Response, error) {
	return s.Send(ctx, &req)
}

// UpdateInstanceStatus sends updateInstanceStatus (FREEZE or UNFREEZE).
func (s *Simulator) UpdateInstanceStatus(ctx context.Context, req koogallery.UpdateInstanceStatusRequest) (*Response, error) {
	return s.Send(ctx, &req)
}

// ReleaseInstance sends releaseInstance.
func (s *Simulator) ReleaseInstance(ctx context.Context, req koogallery.ReleaseInstanceRequest) (*Response, error) {
	return s.Send(ctx, &req)
}

// UpgradeInstance sends upgradeInstance.
func (s *Simulator) UpgradeInstance(ctx context.Context, req koogallery.UpgradeInstanceRequest) (*Response, error) {
	return s.Send(ctx, &req)
}

// ChangeInstanceCheck sends changeInstanceCheck. A non-000000 answer (the change is refused) is
// returned as a CallError like any other.
func (s *Simulator) ChangeInstanceCheck(ctx context.Context, req koogallery.ChangeInstanceCheckRequest) (*Response, error) {
	return s.Send(ctx, &req)
}

// OrderNotify sends orderNotify.
func (s *Simulator) OrderNotify(ctx context.Context, req koogallery.OrderNotifyRequest) (*Response, error) {
	return s.Send(ctx, &req)
}
