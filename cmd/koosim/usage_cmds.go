package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

const usageSynopsis = `usage --openapi-url URL [--instance-id ID] [--json]

Prints what a running "koosim serve" received from usage pushes: with --instance-id, that
instance's records (each metering_sn once) and counters; without, one row per instance and the
totals. DUPLICATES are records sent again under an accepted metering_sn (a retry, not billed);
CONFLICTS reuse an accepted metering_sn for other content; OVERLAPS are records whose time
overlaps an accepted record of the instance under another metering_sn (billed twice). REFUSED
counts refused pushes by error_code.`

func (a *app) openAPIURL(u string) (string, error) {
	if u == "" {
		u = a.getenv("KOOSIM_OPENAPI_URL")
	}
	if u == "" {
		return "", fmt.Errorf("%w: --openapi-url or $KOOSIM_OPENAPI_URL is required", errUsage)
	}
	return u, nil
}

func (a *app) usageCmd(ctx context.Context, args []string) error {
	fs := a.flagSet("usage", usageSynopsis)
	base := fs.String("openapi-url", "", `base URL of "koosim serve" (or $KOOSIM_OPENAPI_URL)`)
	id := fs.String("instance-id", "", "the instance whose records to print")
	asJSON := fs.Bool("json", false, "print the simulator's answer as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of the call")
	if err := parse(fs, args); err != nil {
		return err
	}
	u, err := a.openAPIURL(*base)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dc := simulator.DebugClient{BaseURL: u}
	if *id != "" {
		v, err := dc.InstanceUsage(ctx, *id)
		if err != nil {
			return fmt.Errorf("reading usage: %w", err)
		}
		if *asJSON {
			return a.printJSON(v)
		}
		return a.printInstanceUsage(v)
	}
	rep, err := dc.Usage(ctx)
	if err != nil {
		return fmt.Errorf("reading usage: %w", err)
	}
	if *asJSON {
		return a.printJSON(rep)
	}
	return a.printUsageReport(rep)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

func (a *app) printInstanceUsage(v simulator.UsageView) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BEGIN\tEND\tVALUE\tMETERING_SN\tRECORD_TIME")
	for _, r := range v.Records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.BeginTime, r.EndTime, r.UsageValue, orNone(r.MeteringSN), r.RecordTime)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	fmt.Fprintf(a.stdout, "instance %s: known %t, %d records, total %s, duplicates %d, conflicts %d, overlaps %d\n",
		v.InstanceID, v.Known, len(v.Records), total(v.Total), v.Duplicates, v.Conflicts, v.Overlaps)
	return nil
}

func (a *app) printUsageReport(rep simulator.UsageReport) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tKNOWN\tTOTAL\tDUPLICATES\tCONFLICTS\tOVERLAPS")
	for _, in := range rep.Instances {
		fmt.Fprintf(tw, "%s\t%t\t%s\t%d\t%d\t%d\n", in.InstanceID, in.Known, total(in.Total), in.Duplicates, in.Conflicts, in.Overlaps)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	st := rep.Stats
	fmt.Fprintf(a.stdout, "pushes %d, records %d, duplicates %d, conflicts %d, overlaps %d, refused %v\n",
		st.Pushes, st.Records, st.Duplicates, st.Conflicts, st.Overlaps, st.Refused)
	return nil
}

func total(v float64) string { return fmt.Sprintf("%.4f", v) }

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// awaitUsage polls the simulator until instanceID has at least n records, every interval, within
// the context's deadline.
func awaitUsage(ctx context.Context, dc simulator.DebugClient, instanceID string, n int, interval time.Duration) (string, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		v, err := dc.InstanceUsage(ctx, instanceID)
		if err == nil && len(v.Records) >= n {
			return fmt.Sprintf("%d records, total %s", len(v.Records), total(v.Total)), nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return "", fmt.Errorf("waiting for %d usage records: %w", n, err)
			}
			return "", fmt.Errorf("waiting for %d usage records, %d arrived: %w", n, len(v.Records), ctx.Err())
		case <-t.C:
		}
	}
}
