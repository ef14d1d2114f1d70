package usage

import (
	"testing"
	"time"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestUnits(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "12": "12", "12.5": "12.5", "0.00019": "0.0001", "7.12345678": "7.1234", "99999999.9999": "99999999.9999"} {
		u, err := parseUnits(in)
		if err != nil || u.String() != want {
			t.Errorf("parseUnits(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1e3", "1.2.3", "abc", "123456789", " .5"} {
		if _, err := parseUnits(bad); err == nil {
			t.Errorf("parseUnits(%q) accepted", bad)
		}
	}
	if got := hours(3600); got != 10000 {
		t.Errorf("an hour is %d units", got)
	}
}

func runningLedger() ledger {
	return ledger{instanceID: "i-1", source: saasv1alpha1.MeteringRunningTime, interval: time.Hour}
}

// Periods end on the hour; a freeze in the second hour and an unfreeze in the fourth split the
// hours between them; the third hour, frozen throughout, is closed without a record.
func TestAdvanceRunningTime(t *testing.T) {
	l := runningLedger()
	start := t0.Add(30 * time.Minute)
	u := l.start(observation{now: start, running: true, since: start})
	u, _ = l.advance(u, observation{now: t0.Add(time.Hour), running: true, since: start})
	u = acknowledged(u)
	frozenAt := t0.Add(90 * time.Minute)
	// The freeze is seen late, in the third hour: the second hour is closed with it.
	u, _ = l.advance(u, observation{now: t0.Add(2*time.Hour + 5*time.Minute), running: false, since: frozenAt})
	if len(u.Pending) != 1 || u.Pending[0].Value != "0.5" || u.Running {
		t.Fatalf("second hour: %+v", u)
	}
	u = acknowledged(u)
	// The third hour, frozen throughout, has nothing to push: it is acknowledged at once.
	u, _ = l.advance(u, observation{now: t0.Add(3 * time.Hour), running: false, since: frozenAt})
	if len(u.Pending) != 0 || !u.PushedUntil.Time.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("third hour: %+v", u)
	}
	unfrozen := t0.Add(3*time.Hour + 45*time.Minute)
	u, _ = l.advance(u, observation{now: t0.Add(4 * time.Hour), running: true, since: unfrozen})
	if len(u.Pending) != 1 || u.Pending[0].Value != "0.25" || u.Pending[0].Cumulative != "1.25" {
		t.Fatalf("fourth hour: %+v", u)
	}
	recs := l.records(u)
	if len(recs) != 1 || !recs[0].BeginTime.Equal(t0.Add(3*time.Hour)) || recs[0].UsageValue != 0.25 {
		t.Fatalf("records %+v", recs)
	}
}

// Missed periods are closed in bounded batches, each with its own record; the sample stays at the
// last closed period until every one is.
func TestAdvanceCatchesUpInBatches(t *testing.T) {
	l := runningLedger()
	u := l.start(observation{now: t0, running: true, since: t0})
	now := t0.Add(30*time.Hour + time.Minute)
	o := observation{now: now, running: true, since: t0}
	u, behind := l.advance(u, o)
	if len(u.Pending) != saasv1alpha1.MaxPendingUsage || behind != 30-saasv1alpha1.MaxPendingUsage {
		t.Fatalf("pending %d, behind %d", len(u.Pending), behind)
	}
	if !u.StatisticalTime.Time.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("sampled at %v", u.StatisticalTime)
	}
	u, behind = l.advance(acknowledged(u), o)
	if len(u.Pending) != 6 || behind != 0 || u.Pending[5].Cumulative != "30" {
		t.Fatalf("second batch: %+v, behind %d", u.Pending, behind)
	}
	seen := map[string]bool{}
	for _, p := range u.Pending {
		if seen[p.MeteringSN] || p.Value != "1" {
			t.Fatalf("period %+v", p)
		}
		seen[p.MeteringSN] = true
	}
}

// The application's value is cumulative: a decrease is never pushed, usage resumes past the old
// high, and periods missed fold into one record since only the value now is known.
func TestAdvanceAppReported(t *testing.T) {
	l := ledger{instanceID: "i-2", source: saasv1alpha1.MeteringAppReported, interval: time.Hour}
	v := func(s string) *units { u, _ := parseUnits(s); return &u }
	u := l.start(observation{now: t0, running: true, since: t0})
	u, _ = l.advance(u, observation{now: t0.Add(time.Hour), reported: v("40")})
	u = acknowledged(u)
	u, _ = l.advance(u, observation{now: t0.Add(2 * time.Hour), reported: v("15")})
	if len(u.Pending) != 0 || u.PushedValue != "40" {
		t.Fatalf("a decrease was taken: %+v", u)
	}
	u, _ = l.advance(u, observation{now: t0.Add(5*time.Hour + time.Minute), reported: v("52.5")})
	if len(u.Pending) != 1 || u.Pending[0].Value != "12.5" || !u.Pending[0].BeginTime.Time.Equal(t0.Add(2*time.Hour)) ||
		!u.Pending[0].EndTime.Time.Equal(t0.Add(5*time.Hour)) {
		t.Fatalf("catch-up: %+v", u.Pending)
	}
}

// A release ends the last period; a report made after a period ended at the release gets a
// last period of one second, and then the ledger is done.
func TestAdvanceRelease(t *testing.T) {
	l := ledger{instanceID: "i-3", source: saasv1alpha1.MeteringAppReported, interval: time.Hour}
	v := func(s string) *units { u, _ := parseUnits(s); return &u }
	u := l.start(observation{now: t0, running: true, since: t0})
	released := t0.Add(90 * time.Minute)
	u, _ = l.advance(u, observation{now: released, releasedAt: released, reported: v("3")})
	if n := len(u.Pending); n != 1 || !u.Pending[0].EndTime.Time.Equal(released) || done(u, released) {
		t.Fatalf("release: %+v", u.Pending)
	}
	u = acknowledged(u)
	if !done(u, released) {
		t.Fatal("not done after the last period")
	}
	u, _ = l.advance(u, observation{now: released, releasedAt: released, reported: v("4")})
	if len(u.Pending) != 1 || !u.Pending[0].EndTime.Time.Equal(released.Add(time.Second)) || u.Pending[0].Value != "1" {
		t.Fatalf("late report: %+v", u.Pending)
	}
}
