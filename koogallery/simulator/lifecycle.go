package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// LifecycleOptions selects the orders a lifecycle runs with; zero values take the mock orders.
type LifecycleOptions struct {
	// OrderID and OrderLineID are the purchase. Default MOCKPERIODYEARNEW.
	OrderID, OrderLineID string
	// ChargingMode is the purchase's: PERIOD runs the yearly/monthly lifecycle, ON_DEMAND the
	// pay-per-use one, which has no renewal or upgrade (koogallery-saas.md §1.0). Default
	// ON_DEMAND for MOCKONDEMAND, PERIOD otherwise.
	ChargingMode string
	// RenewOrderID is the renewal order. Default MOCKMONTYRENEW.
	RenewOrderID string
	// UpgradeOrderID is the upgrade order. Default MOCKMONTYCHANGE.
	UpgradeOrderID string
	// RenewTo is the expiry after renewal. Default one year after the clock's now.
	RenewTo time.Time
	// Test marks every call as a debug call (testFlag 1).
	Test bool
	// Register, when set, is told the new instance and when it started (the second the create was
	// sent), as KooGallery learns it from the create's answer: the open API simulator accepts
	// usage only for instances it knows (OpenAPIServer.RegisterInstance, DebugClient).
	Register func(ctx context.Context, instanceID string, start time.Time) error
	// BeforeRelease, when set, runs as the step "usage" before the release, e.g. to wait until
	// the merchant pushed usage for a pay-per-use instance; its detail goes in the table.
	BeforeRelease func(ctx context.Context, instanceID string) (detail string, err error)
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
	if o.ChargingMode == "" {
		o.ChargingMode = openapi.ChargingPeriod
		if o.OrderID == MockOnDemand {
			o.ChargingMode = openapi.ChargingOnDemand
		}
	}
}

type lifecycleCall struct {
	name, detail string
	req          koogallery.BasicRequest
}

// calls are the steps after create and poll for the charging mode.
func (o *LifecycleOptions) calls(id string, flag koogallery.TestFlag) []lifecycleCall {
	renew := lifecycleCall{"renew", "expires " + koogallery.FormatExpireTime(o.RenewTo), &koogallery.RefreshInstanceRequest{
		Scene: koogallery.SceneRenewal, OrderID: o.RenewOrderID, OrderLineID: MockLineID(o.RenewOrderID),
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(o.RenewTo), TestFlag: flag}}
	freeze := lifecycleCall{"freeze", koogallery.StatusFreeze, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze, TestFlag: flag}}
	unfreeze := lifecycleCall{"unfreeze", koogallery.StatusUnfreeze, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusUnfreeze, TestFlag: flag}}
	upgrade := lifecycleCall{"upgrade", "order " + o.UpgradeOrderID, &koogallery.UpgradeInstanceRequest{
		InstanceID: id, OrderID: o.UpgradeOrderID, OrderLineID: MockLineID(o.UpgradeOrderID), TestFlag: flag}}
	if o.ChargingMode == openapi.ChargingOnDemand {
		return []lifecycleCall{freeze, unfreeze}
	}
	return []lifecycleCall{renew, freeze, unfreeze, upgrade}
}

// Lifecycle runs create → poll → renew → freeze → unfreeze → upgrade → release against the
// production URL (create → poll → freeze → unfreeze → release for pay-per-use) and returns one
// row per step, with the "register" and "usage" steps of the options' hooks. It stops at the
// first failed step and returns the rows so far with the error.
func (s *Simulator) Lifecycle(ctx context.Context, opts LifecycleOptions) ([]Step, error) {
	opts.defaults(s.cfg.Clock())
	switch opts.ChargingMode {
	case openapi.ChargingPeriod, openapi.ChargingOnDemand:
	default:
		return nil, fmt.Errorf("lifecycle: charging mode %q is not %s or %s", opts.ChargingMode, openapi.ChargingPeriod, openapi.ChargingOnDemand)
	}
	flag := koogallery.TestFlagProduction
	if opts.Test {
		flag = koogallery.TestFlagDebug
	}
	start := s.cfg.Clock().Truncate(time.Second)
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
	if opts.Register != nil {
		t0 := time.Now()
		if err := opts.Register(ctx, id, start); err != nil {
			return append(steps, Step{Name: "register", Detail: err.Error()}), fmt.Errorf("register: %w", err)
		}
		steps = append(steps, Step{Name: "register", Latency: time.Since(t0), Detail: "started " + start.UTC().Format(openapi.UsageTimeLayout)})
	}
	for _, r := range opts.calls(id, flag) {
		resp, err := s.Send(ctx, r.req)
		if err != nil {
			return append(steps, failedStep(r.name, r.req.ActivityName(), err)), fmt.Errorf("%s: %w", r.name, err)
		}
		steps = append(steps, Step{Name: r.name, Activity: r.req.ActivityName(), ResultCode: resp.Reply.ResultCode,
			Attempts: resp.Attempts, Latency: resp.Latency, Detail: r.detail})
	}
	if opts.BeforeRelease != nil {
		t0 := time.Now()
		detail, err := opts.BeforeRelease(ctx, id)
		if err != nil {
			return append(steps, Step{Name: "usage", Detail: err.Error()}), fmt.Errorf("usage: %w", err)
		}
		steps = append(steps, Step{Name: "usage", Latency: time.Since(t0), Detail: detail})
	}
	release := &koogallery.ReleaseInstanceRequest{InstanceID: id, TestFlag: flag}
	resp, err := s.Send(ctx, release)
	if err != nil {
		return append(steps, failedStep("release", release.ActivityName(), err)), fmt.Errorf("release: %w", err)
	}
	return append(steps, Step{Name: "release", Activity: release.ActivityName(), ResultCode: resp.Reply.ResultCode,
		Attempts: resp.Attempts, Latency: resp.Latency}), nil
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, orDash(s.Activity), orDash(s.ResultCode), s.Attempts, s.Latency.Round(time.Microsecond), s.Detail)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}

// orDash fills the cells of the steps that are not a call to the merchant ("register", "usage").
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
