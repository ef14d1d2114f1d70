package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// LifecycleOptions selects the orders a lifecycle runs with; zero values take the mock orders.
type LifecycleOptions struct {
	// OrderID and OrderLineID are the purchase. Default MOCKPERIODYEARNEW.
	OrderID, OrderLineID string
	// RenewOrderID is the renewal order. Default MOCKMONTYRENEW.
	RenewOrderID string
	// UpgradeOrderID is the upgrade order. Default MOCKMONTYCHANGE.
	UpgradeOrderID string
	// RenewTo is the expiry after renewal. Default one year after the clock's now.
	RenewTo time.Time
	// Test marks every call as a debug call (testFlag 1).
	Test bool
}

// Step is one row of a lifecycle run.
type Step struct {
	Name       string
	Activity   string
	ResultCode string
	Attempts   int
	Latency    time.Duration
	Detail     string
}

func (o *LifecycleOptions) defaults(now time.Time) {
	if o.OrderID == "" {
		o.OrderID = MockPeriodYearNew
	}
	if o.OrderLineID == "" {
		o.OrderLineID = MockLineID(o.OrderID)
	}
	if o.RenewOrderID == "" {
		o.RenewOrderID = MockMonthRenew
	}
	if o.UpgradeOrderID == "" {
		o.UpgradeOrderID = MockMonthChange
	}
	if o.RenewTo.IsZero() {
		o.RenewTo = now.AddDate(1, 0, 0)
	}
}

// Lifecycle runs create → poll → renew → freeze → unfreeze → upgrade → release against the
// production URL and returns one row per step. It stops at the first failed step and returns the
// rows so far with the error.
func (s *Simulator) Lifecycle(ctx context.Context, opts LifecycleOptions) ([]Step, error) {
	opts.defaults(s.cfg.Clock())
	flag := koogallery.TestFlagProduction
	if opts.Test {
		flag = koogallery.TestFlagDebug
	}
	created, err := s.NewInstance(ctx, koogallery.NewInstanceRequest{
		OrderID: opts.OrderID, OrderLineID: opts.OrderLineID, BusinessID: newBusinessID(), TestFlag: flag,
	})
	if err != nil {
		return []Step{failedStep("create", koogallery.ActivityNewInstance, err)}, fmt.Errorf("create: %w", err)
	}
	id := created.InstanceID
	steps := []Step{
		{Name: "create", Activity: koogallery.ActivityNewInstance, ResultCode: created.CreateCode, Attempts: created.CreateAttempts, Latency: created.CreateLatency, Detail: "instanceId " + id},
		{Name: "poll", Activity: koogallery.ActivityQueryInstance, ResultCode: created.Final.ResultCode, Attempts: created.Polls, Detail: "frontEndUrl " + created.Info.AppInfo.FrontEndURL},
	}
	rest := []struct {
		name, detail string
		req          koogallery.BasicRequest
	}{
		{"renew", "expires " + koogallery.FormatExpireTime(opts.RenewTo), &koogallery.RefreshInstanceRequest{
			Scene: koogallery.SceneRenewal, OrderID: opts.RenewOrderID, OrderLineID: MockLineID(opts.RenewOrderID),
			InstanceID: id, ExpireTime: koogallery.FormatExpireTime(opts.RenewTo), TestFlag: flag}},
		{"freeze", koogallery.StatusFreeze, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze, TestFlag: flag}},
		{"unfreeze", koogallery.StatusUnfreeze, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusUnfreeze, TestFlag: flag}},
		{"upgrade", "order " + opts.UpgradeOrderID, &koogallery.UpgradeInstanceRequest{
			InstanceID: id, OrderID: opts.UpgradeOrderID, OrderLineID: MockLineID(opts.UpgradeOrderID), TestFlag: flag}},
		{"release", "", &koogallery.ReleaseInstanceRequest{InstanceID: id, TestFlag: flag}},
	}
	for _, r := range rest {
		resp, err := s.Send(ctx, r.req)
		if err != nil {
			return append(steps, failedStep(r.name, r.req.ActivityName(), err)), fmt.Errorf("%s: %w", r.name, err)
		}
		steps = append(steps, Step{Name: r.name, Activity: r.req.ActivityName(), ResultCode: resp.Reply.ResultCode,
			Attempts: resp.Attempts, Latency: resp.Latency, Detail: r.detail})
	}
	return steps, nil
}

func failedStep(name, activity string, err error) Step {
	st := Step{Name: name, Activity: activity, Detail: err.Error()}
	var ce *CallError
	if errors.As(err, &ce) {
		st.ResultCode, st.Attempts = ce.ResultCode, ce.Attempts
	}
	return st
}

// newBusinessID is a fresh businessId: KooGallery sends a different one on every call.
func newBusinessID() string {
	n := RandomNonce()
	return fmt.Sprintf("%s-%s-%s-%s-%s", n[0:8], n[8:12], n[12:16], n[16:20], n[20:32])
}

// WriteTable prints steps as an aligned table.
func WriteTable(w io.Writer, steps []Step) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTIVITY\tRESULT\tATTEMPTS\tLATENCY\tDETAIL")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Activity, s.ResultCode, s.Attempts, s.Latency.Round(time.Microsecond), s.Detail)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}
