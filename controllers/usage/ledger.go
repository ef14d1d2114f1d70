package usage

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// units are ten-thousandths of the plan's unit: KooGallery takes 4 decimals, and integers keep
// the sum of the pushed periods equal to the cumulative value.
type units int64

// maxUnits keeps every value within KooGallery's Double(12,4) (8 integer digits).
const maxUnits units = 99_999_999_9999

// parseUnits reads a non-negative decimal; decimals past the fourth are cut off.
func parseUnits(s string) (units, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" || len(whole) > 8 {
		return 0, errors.New("not a non-negative decimal of at most 8 integer digits")
	}
	frac = (frac + "0000")[:4]
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, errors.New("not a non-negative decimal of at most 8 integer digits")
	}
	f, _ := strconv.ParseInt(frac, 10, 64) // four digits, checked above
	return units(w*10000 + f), nil
}

func (u units) String() string {
	s := strconv.FormatInt(int64(u)/10000, 10)
	if f := int64(u) % 10000; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%04d", f), "0")
	}
	return s
}

func (u units) float() float64 { return math.Round(float64(u)) / 10000 }

// hours converts running seconds to units of an hour, rounded: a function of the cumulative
// seconds alone, so consecutive periods add up to the cumulative hours exactly.
func hours(seconds int64) units { return min(units((seconds*25+4)/9), maxUnits) }

// observation is what one pass sees of the tenant and its application.
type observation struct {
	now time.Time
	// running is whether the tenant is Ready now, and since when (the Ready condition's last
	// transition, or the release).
	running bool
	since   time.Time
	// releasedAt is when the instance was released (deleted): metering stops there. Zero while it
	// lives.
	releasedAt time.Time
	// reported is the application's cumulative value (AppReported), nil when it has none.
	reported *units
}

// ledger is the pure bookkeeping of one instance.
type ledger struct {
	instanceID string
	source     saasv1alpha1.MeteringSource
	interval   time.Duration
}

// start opens the ledger of a tenant that just became metered at o.since.
func (l ledger) start(o observation) *saasv1alpha1.UsageStatus {
	begin := metav1.NewTime(o.since)
	return &saasv1alpha1.UsageStatus{StartTime: begin, StatisticalTime: begin, Value: "0", Running: o.running,
		PushedUntil: begin, PushedValue: "0"}
}

// runningSecondsAt is how long the tenant ran up to t, from the sample in u and one transition
// at o.since if the state changed since the sample. t is at or after the sample.
func runningSecondsAt(u *saasv1alpha1.UsageStatus, o observation, t time.Time) int64 {
	s := u.StatisticalTime.Time
	if t.Before(s) {
		t = s
	}
	v := u.RunningSeconds
	if o.running == u.Running {
		if u.Running {
			v += seconds(t.Sub(s))
		}
		return v
	}
	change := o.since
	if change.Before(s) {
		change = s
	}
	if change.After(o.now) {
		change = o.now
	}
	if u.Running {
		v += seconds(minTime(t, change).Sub(s))
	}
	if o.running && t.After(change) {
		v += seconds(t.Sub(change))
	}
	return v
}

func seconds(d time.Duration) int64 { return max(0, int64(d/time.Second)) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// closed is where the last closed period ends (pending or pushed) and the cumulative there.
func closed(u *saasv1alpha1.UsageStatus) (time.Time, units) {
	if n := len(u.Pending); n > 0 {
		c, _ := parseUnits(u.Pending[n-1].Cumulative)
		return u.Pending[n-1].EndTime.Time, c
	}
	c, _ := parseUnits(u.PushedValue)
	return u.PushedUntil.Time, c
}

// dueEnds are the ends of the periods after from that are over by o.now: the schedule's
// boundaries and, once released, the release itself.
func (l ledger) dueEnds(from time.Time, o observation) []time.Time {
	var ends []time.Time
	stop := o.now
	if !o.releasedAt.IsZero() && o.releasedAt.Before(stop) {
		stop = o.releasedAt
	}
	for b := from.Truncate(l.interval).Add(l.interval); !b.After(stop); b = b.Add(l.interval) {
		ends = append(ends, b)
	}
	if !o.releasedAt.IsZero() && !o.releasedAt.After(o.now) && o.releasedAt.After(from) &&
		(len(ends) == 0 || ends[len(ends)-1].Before(o.releasedAt)) {
		ends = append(ends, o.releasedAt)
	}
	return ends
}

// lateReport is the end of a last period for what the application reported after the period
// that ends at the release was closed (in the same second: the release time has second
// precision), one second long; zero when there is none.
func (l ledger) lateReport(from time.Time, cum units, o observation) time.Time {
	end := from.Add(time.Second)
	if l.source != saasv1alpha1.MeteringAppReported || o.releasedAt.IsZero() || from.Before(o.releasedAt) ||
		o.reported == nil || *o.reported <= cum {
		return time.Time{}
	}
	return end
}

// advance closes the periods that are over into u.Pending (at most MaxPendingUsage in all) and
// samples the usage, returning the new ledger and how many periods are still over but not
// closed. Periods without usage are closed as pushed at once when nothing is pending. The input
// is not modified.
func (l ledger) advance(in *saasv1alpha1.UsageStatus, o observation) (*saasv1alpha1.UsageStatus, int) {
	u := in.DeepCopy()
	from, cum := closed(u)
	ends := l.dueEnds(from, o)
	if late := l.lateReport(from, cum, o); !late.IsZero() {
		ends = append(ends, late)
	}
	room := saasv1alpha1.MaxPendingUsage - len(u.Pending)
	if l.source == saasv1alpha1.MeteringAppReported && len(ends) > 1 {
		// Only the value now is known: the periods missed fold into one record to the last end.
		ends = ends[len(ends)-1:]
	}
	behind := max(0, len(ends)-room)
	ends = ends[:min(len(ends), room)]
	for _, end := range ends {
		next := l.cumulativeAt(in, o, end, cum)
		u.Pending = append(u.Pending, saasv1alpha1.UsagePeriod{MeteringSN: openapi.MeteringSN(l.instanceID, end),
			BeginTime: metav1.NewTime(from), EndTime: metav1.NewTime(end), Value: (next - cum).String(), Cumulative: next.String()})
		from, cum = end, next
	}
	sampleAt := o.now
	if behind > 0 {
		// What ran after the last closed period is measured when its periods are closed.
		sampleAt = from
	}
	if allZero(u.Pending) && len(u.Pending) > 0 {
		last := u.Pending[len(u.Pending)-1]
		u.PushedUntil, u.PushedValue, u.Pending = last.EndTime, last.Cumulative, nil
	}
	l.sample(u, in, o, sampleAt, cum)
	return u, behind
}

// cumulativeAt is the cumulative usage at end, never below the cumulative already closed.
func (l ledger) cumulativeAt(u *saasv1alpha1.UsageStatus, o observation, end time.Time, floor units) units {
	var v units
	switch {
	case l.source == saasv1alpha1.MeteringRunningTime:
		v = hours(runningSecondsAt(u, o, end))
	case o.reported != nil:
		v = *o.reported
	}
	return max(v, floor)
}

// sample records the usage at t in u, from the ledger as it was (in).
func (l ledger) sample(u, in *saasv1alpha1.UsageStatus, o observation, t time.Time, closedCum units) {
	if t.Before(in.StatisticalTime.Time) {
		return
	}
	value, _ := parseUnits(in.Value)
	switch {
	case l.source == saasv1alpha1.MeteringRunningTime:
		u.RunningSeconds = runningSecondsAt(in, o, t)
		u.Running = in.Running
		if o.running == in.Running || !o.since.After(t) {
			u.Running = o.running
		}
		value = hours(u.RunningSeconds)
	case o.reported != nil:
		value = max(value, *o.reported)
	}
	u.StatisticalTime, u.Value = metav1.NewTime(t), max(value, closedCum).String()
}

func allZero(ps []saasv1alpha1.UsagePeriod) bool {
	for _, p := range ps {
		if v, _ := parseUnits(p.Value); v > 0 {
			return false
		}
	}
	return true
}

// records are the pending periods with usage, as the usage push sends them.
func (l ledger) records(u *saasv1alpha1.UsageStatus) []openapi.UsageRecord {
	var out []openapi.UsageRecord
	for _, p := range u.Pending {
		v, _ := parseUnits(p.Value)
		if v <= 0 {
			continue
		}
		out = append(out, openapi.UsageRecord{InstanceID: l.instanceID, RecordTime: p.EndTime.Time,
			BeginTime: p.BeginTime.Time, EndTime: p.EndTime.Time, UsageValue: v.float(), MeteringSN: p.MeteringSN})
	}
	return out
}

// acknowledged moves the pending periods into what was pushed.
func acknowledged(in *saasv1alpha1.UsageStatus) *saasv1alpha1.UsageStatus {
	u := in.DeepCopy()
	if n := len(u.Pending); n > 0 {
		u.PushedUntil, u.PushedValue = u.Pending[n-1].EndTime, u.Pending[n-1].Cumulative
	}
	u.Pending, u.Failures, u.NextAttemptTime, u.LastError = nil, 0, nil, ""
	return u
}

// done reports whether the ledger of a released instance has pushed its last period.
func done(u *saasv1alpha1.UsageStatus, releasedAt time.Time) bool {
	return u == nil || (len(u.Pending) == 0 && !u.PushedUntil.Time.Before(releasedAt))
}
