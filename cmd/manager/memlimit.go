package main

import (
	"cmp"
	"context"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cgroupMemoryFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// memoryLimitShare of the container's limit is the Go runtime's soft limit; the rest is for
// what the runtime does not count (the binary's mapped pages, thread stacks outside the heap).
const memoryLimitShare = 0.9

// containerMemoryLimit returns the cgroup memory limit in bytes, or 0 when there is none.
func containerMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	for _, f := range cgroupMemoryFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		// "max" (v2) or a page-rounded MaxInt64 (v1) mean no limit.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}

// setMemoryLimit gives the Go runtime a soft memory limit below the container's, unless
// GOMEMLIMIT already sets one. Without it the heap grows to twice what is live before the next
// collection, so a container limit sized for the live heap (the cache of every instance's
// objects) would see the manager OOM-killed at a size it could serve. It returns the limit set,
// or 0.
func setMemoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := containerMemoryLimit(readFile)
	if limit == 0 {
		return 0
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// defaultGCPercent replaces Go's default GOGC of 100. Most of the manager's heap is its cache,
// which lives as long as the process: with 100 the collector lets the heap grow to twice that
// before it runs, so the resident size is about twice what the manager holds. 50 keeps the
// headroom at half the cache, for collections
// about twice as frequent while instances are being provisioned and nearly none at rest.
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless GOGC sets the collector's target. It returns the
// percentage set, or 0.
func setGCPercent(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		return 0
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}

// Polls of the instance controller while waiting for its first burst of work to drain: idle on
// idleChecks polls in a row, idlePoll apart, is drained (the release then comes within half a
// second of the last reconcile); idleWait bounds the wait.
const (
	idlePoll   = 250 * time.Millisecond
	idleChecks = 2
	idleWait   = 10 * time.Minute
)

// releaseAfterSync returns the heap freed while the manager starts to the operating system:
// once when the cache's initial lists are in, and once more when the instance controller has
// worked through the reconcile of every instance that follows them. Both make far more garbage
// than the manager then keeps (decoding every object in full before the transforms drop
// fields; reading every instance's children once), and the runtime would hand it back only a
// little at a time, so right after a start the resident size would be tens of MiB above what
// the manager holds, at the moment a container limit is most likely to be reached (a restart
// under load). A manager started with no instance has nothing queued until the first ones
// arrive, so its second release follows the first burst of them instead. A controller that
// never falls idle within idleWait is past its start: its garbage is then the runtime's to
// return at its own pace.
type releaseAfterSync struct {
	cache cache.Cache
	kinds []client.Object
	// release is freeOSMemory; after says what the release follows.
	release func(after string)
	// idle reports whether the instance controller has nothing queued and nothing in hand. Nil
	// skips the second release.
	idle func() bool
	// poll and wait replace idlePoll and idleWait when set.
	poll, wait time.Duration
}

// NeedLeaderElection is true: the large informers are those the controllers start, after the
// manager is elected.
func (releaseAfterSync) NeedLeaderElection() bool { return true }

// Start asks for each kind's informer (the one the controllers share, started here if they
// have not yet), waits until each has synced and then releases the free heap; then again once
// the instance controller has drained. An informer that cannot start is not its error to
// report: the controller that watches the kind fails on the same informer and stops the
// manager with it.
func (r releaseAfterSync) Start(ctx context.Context) error {
	for _, o := range r.kinds {
		if _, err := r.cache.GetInformer(ctx, o); err != nil {
			return nil
		}
	}
	r.release("the cache's initial lists")
	if r.idle != nil && r.drained(ctx) {
		r.release("the first reconciles")
	}
	return nil
}

// freeOSMemory returns the free heap to the operating system and logs how much that was: a
// release that returns little says the start made little garbage, one that returns much says
// what a container limit must leave room for before it.
func freeOSMemory(after string) {
	var before, now runtime.MemStats
	runtime.ReadMemStats(&before)
	debug.FreeOSMemory()
	runtime.ReadMemStats(&now)
	ctrl.Log.Info("returned free heap to the operating system", "after", after,
		"bytes", int64(now.HeapReleased)-int64(before.HeapReleased), "heapInUseBytes", now.HeapInuse)
}

// drained reports whether idle held on idleChecks polls in a row before the wait ran out or
// ctx ended. The first poll is one interval in, so that the reconciles the initial lists
// queue have begun.
func (r releaseAfterSync) drained(ctx context.Context) bool {
	poll, wait := cmp.Or(r.poll, idlePoll), cmp.Or(r.wait, idleWait)
	t := time.NewTicker(poll)
	defer t.Stop()
	inARow := 0
	for range max(wait/poll, 1) {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		// A tick and a stop can arrive together; the stop wins.
		if ctx.Err() != nil {
			return false
		}
		if !r.idle() {
			inARow = 0
			continue
		}
		if inARow++; inARow == idleChecks {
			return true
		}
	}
	return false
}

// controllerIdle returns an idle check for the named controller that reads controller-runtime's
// own gauges from g (its metrics registry): the depth of the controller's workqueue, on every
// priority, and its active workers. A controller whose gauges are missing has not started, so
// it is not idle.
func controllerIdle(g prometheus.Gatherer, controller string) func() bool {
	// The label that names the controller, by gauge.
	gauges := map[string]string{"workqueue_depth": "name", "controller_runtime_active_workers": "controller"}
	return func() bool {
		// Gather returns what it could alongside a collector's error; the gauges read here are
		// either in it or missing.
		families, _ := g.Gather()
		seen := map[string]bool{}
		for _, f := range families {
			label, ok := gauges[f.GetName()]
			if !ok {
				continue
			}
			for _, m := range f.GetMetric() {
				if labelValue(m, label) != controller {
					continue
				}
				if m.GetGauge().GetValue() != 0 {
					return false
				}
				seen[f.GetName()] = true
			}
		}
		return len(seen) == len(gauges)
	}
}

// labelValue is the value of m's label name, or "" when it has none.
func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
