package main

import (
	"errors"
	"math"
	"runtime/debug"
	"testing"
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
