package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestSetMemoryLimit(t *testing.T) {
	t.Cleanup(func() { debug.SetMemoryLimit(math.MaxInt64) })
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, errors.New("no such file")
		}
	}
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name  string
		env   func(string) string
		files map[string]string
		want  int64
	}{
		{"cgroup v2 limit", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n"}, 241591910},
		{"cgroup v1 limit", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n"}, 483183820},
		{"cgroup v2 without a limit", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0},
		{"cgroup v1 without a limit", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0},
		{"no cgroup", noEnv, nil, 0},
		{"GOMEMLIMIT wins", func(k string) string {
			if k == "GOMEMLIMIT" {
				return "100MiB"
			}
			return ""
		}, map[string]string{"/sys/fs/cgroup/memory.max": "268435456"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			got := setMemoryLimit(tc.env, files(tc.files))
			if got != tc.want {
				t.Fatalf("limit %d, want %d", got, tc.want)
			}
			if applied := debug.SetMemoryLimit(-1); tc.want > 0 && applied != tc.want || tc.want == 0 && applied != math.MaxInt64 {
				t.Errorf("runtime limit %d, want %d", applied, tc.want)
			}
		})
	}
}

func TestSetGCPercent(t *testing.T) {
	t.Cleanup(func() { debug.SetGCPercent(100) })
	debug.SetGCPercent(100)
	if got := setGCPercent(func(string) string { return "" }); got != defaultGCPercent || debug.SetGCPercent(100) != defaultGCPercent {
		t.Errorf("without GOGC: set %d, want %d", got, defaultGCPercent)
	}
	gogc := func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	}
	if got := setGCPercent(gogc); got != 0 || debug.SetGCPercent(100) != 100 {
		t.Errorf("GOGC set: the manager changed the collector's target (%d)", got)
	}
}

// informers stands in for the manager's cache: GetInformer blocks until synced is closed, as
// the cache's does until the informer's initial list is in.
type informers struct {
	cache.Cache
	synced chan struct{}
	// waiting, when set, hears each GetInformer that starts waiting for synced.
	waiting chan string
	asked   []string
	fail    string
}

func (c *informers) GetInformer(ctx context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	kind := fmt.Sprintf("%T", obj)
	c.asked = append(c.asked, kind)
	if kind == c.fail {
		return nil, errors.New("no such kind")
	}
	if c.waiting != nil {
		c.waiting <- kind
	}
	select {
	case <-c.synced:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestReleaseAfterSync(t *testing.T) {
	kinds := []client.Object{&corev1.Namespace{}, &corev1.Secret{}}
	t.Run("releases once every kind has synced", func(t *testing.T) {
		c := &informers{synced: make(chan struct{}), waiting: make(chan string)}
		released := make(chan struct{}, 2)
		done := make(chan error)
		go func() {
			done <- releaseAfterSync{cache: c, kinds: kinds, release: func(string) { released <- struct{}{} }}.Start(context.Background())
		}()
		<-c.waiting
		if len(released) > 0 {
			t.Fatal("released before the informers synced")
		}
		close(c.synced)
		<-c.waiting
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(released) != 1 || len(c.asked) != 2 {
			t.Errorf("released %d times after asking for %v, want once after both kinds", len(released), c.asked)
		}
	})
	t.Run("a stopped manager releases nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := releaseAfterSync{cache: &informers{synced: make(chan struct{})}, kinds: kinds,
			release: func(string) { t.Error("released") }}.Start(ctx)
		if err != nil {
			t.Errorf("stopping: %v, want nil", err)
		}
	})
	t.Run("a kind the cache cannot hold leaves the error to its controller", func(t *testing.T) {
		c := &informers{synced: make(chan struct{}), fail: "*v1.Secret"}
		close(c.synced)
		err := releaseAfterSync{cache: c, kinds: kinds, release: func(string) { t.Error("released") }}.Start(context.Background())
		if err != nil {
			t.Errorf("error %v, want nil: the controller watching the kind reports it", err)
		}
	})
}

func TestReleaseAfterIdle(t *testing.T) {
	kinds := []client.Object{&corev1.Namespace{}}
	for _, tc := range []struct {
		name string
		// idle is what the idle check says on each poll; polls beyond it say not idle.
		idle []bool
		// polls is how many polls fit in the wait.
		polls        int
		wantReleased int
		wantPolls    int
	}{
		{"idle twice in a row releases again", []bool{true, true}, 10, 2, 2},
		{"a busy poll between idle ones starts the count again", []bool{false, true, false, true, true}, 10, 2, 5},
		{"idle never twice in a row does not release again", []bool{true, false, true, false, true, false}, 6, 1, 6},
		{"never idle stops at the end of the wait", nil, 7, 1, 7},
		{"idle only on the last poll of the wait does not release again", []bool{false, false, true}, 3, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &informers{synced: make(chan struct{})}
			close(c.synced)
			released, polls := 0, 0
			r := releaseAfterSync{cache: c, kinds: kinds, release: func(string) { released++ },
				idle: func() bool {
					polls++
					if released != 1 {
						t.Errorf("poll %d: released %d times, want once (after the sync) while waiting", polls, released)
					}
					return polls <= len(tc.idle) && tc.idle[polls-1]
				},
				poll: time.Millisecond, wait: time.Duration(tc.polls) * time.Millisecond}
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if released != tc.wantReleased || polls != tc.wantPolls {
				t.Errorf("released %d times after %d polls, want %d after %d", released, polls, tc.wantReleased, tc.wantPolls)
			}
		})
	}
	t.Run("a manager stopped while waiting releases nothing more", func(t *testing.T) {
		c := &informers{synced: make(chan struct{})}
		close(c.synced)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		released, polls := 0, 0
		r := releaseAfterSync{cache: c, kinds: kinds, release: func(string) { released++ },
			idle: func() bool {
				polls++
				if polls == 1 {
					cancel()
				}
				return true
			},
			poll: time.Millisecond, wait: time.Minute}
		if err := r.Start(ctx); err != nil {
			t.Errorf("stopping: %v, want nil", err)
		}
		if released != 1 || polls != 1 {
			t.Errorf("released %d times after %d polls, want once (after the sync) after the poll that saw the stop", released, polls)
		}
	})
}

func TestControllerIdle(t *testing.T) {
	const name = "marketplaceinstance"
	for _, tc := range []struct {
		name string
		// depth and workers set the gauges by label values; nil leaves a gauge out.
		depth   map[[2]string]float64
		workers map[string]float64
		want    bool
	}{
		{"nothing queued, nothing in hand", map[[2]string]float64{{name, ""}: 0, {name, "-100"}: 0}, map[string]float64{name: 0}, true},
		{"another controller busy", map[[2]string]float64{{name, "-100"}: 0, {"marketplaceplan", ""}: 3},
			map[string]float64{name: 0, "marketplaceplan": 2}, true},
		{"items queued at one priority", map[[2]string]float64{{name, ""}: 0, {name, "-100"}: 4}, map[string]float64{name: 0}, false},
		{"a worker busy", map[[2]string]float64{{name, ""}: 0}, map[string]float64{name: 1}, false},
		{"no workqueue yet", map[[2]string]float64{{"marketplaceplan", ""}: 0}, map[string]float64{name: 0}, false},
		{"no workers gauge yet", map[[2]string]float64{{name, ""}: 0}, nil, false},
		{"no gauges", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Subsystem: "workqueue", Name: "depth"},
				[]string{"name", "controller", "priority"})
			workers := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "controller_runtime_active_workers"},
				[]string{"controller"})
			reg.MustRegister(depth, workers)
			for lv, v := range tc.depth {
				depth.WithLabelValues(lv[0], lv[0], lv[1]).Set(v)
			}
			for c, v := range tc.workers {
				workers.WithLabelValues(c).Set(v)
			}
			if got := controllerIdle(reg, name)(); got != tc.want {
				t.Errorf("idle %t, want %t", got, tc.want)
			}
		})
	}
}
