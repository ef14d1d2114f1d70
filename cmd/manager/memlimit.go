package main

import (
	"context"
	"runtime/debug"
	"strconv"
	"strings"

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

// releaseAfterSync returns the heap freed after the cache's initial lists to the operating
// system once, as soon as they are in. Decoding every instance and child in full (managed
// fields and pod templates before the transforms drop them) needs far more heap than the cache
// then keeps; the runtime would hand that back only a little at a time, so right after a
// start the resident size would be tens of MiB above what the manager holds, at the moment a
// container limit is most likely to be reached (a restart under load).
type releaseAfterSync struct {
	cache cache.Cache
	kinds []client.Object
	// release is debug.FreeOSMemory.
	release func()
}

// NeedLeaderElection is true: the large informers are those the controllers start, after the
// manager is elected.
func (releaseAfterSync) NeedLeaderElection() bool { return true }

// Start asks for each kind's informer (the one the controllers share, started here if they
// have not yet), waits until each has synced and then releases the free heap. An informer
// that cannot start is not its error to report: the controller that watches the kind fails
// on the same informer and stops the manager with it.
func (r releaseAfterSync) Start(ctx context.Context) error {
	for _, o := range r.kinds {
		if _, err := r.cache.GetInformer(ctx, o); err != nil {
			return nil
		}
	}
	r.release()
	return nil
}
