//go:build bench

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/gomega"
)

// cpuGroups name the processes whose CPU time a provisioning run reports, by the kernel's
// command name (cut at 15 characters). Everything runs on the same cores, so what one process
// spends the others cannot: the table shows which of them an operator run costs more than the
// bare tenants of the same orders.
var cpuGroups = []struct{ comm, label string }{
	{"etcd", "etcd"},
	{"kube-apiserver", "kube-apiserver"},
	{"kube-controller", "kube-controller-manager"},
	{"kube-scheduler", "kube-scheduler"},
	{"kwok", "kwok"},
	{"manager", "operator"},
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times, 100 on every Linux port.
const clockTick = 10 * time.Millisecond

// cpuTimes is the CPU time (user and system) each group of processes has used so far, and under
// "bench" this test's own (the readiness watch, the bare client, the Query Order simulator and
// the `koosim load` runs it waited for).
func cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	dirs, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces; the fields after it are fixed.
		open, end := strings.IndexByte(string(raw), '('), strings.LastIndexByte(string(raw), ')')
		if open < 0 || end < open {
			continue
		}
		comm, fields := string(raw[open+1:end]), strings.Fields(string(raw[end+1:]))
		if len(fields) < 15 {
			continue
		}
		// utime, stime, cutime, cstime are fields 14 to 17 of stat, 12 to 15 after the name.
		ticks := func(i int) time.Duration {
			n, _ := strconv.ParseInt(fields[i], 10, 64)
			return time.Duration(n) * clockTick
		}
		if d.Name() == self {
			out["bench"] += ticks(11) + ticks(12) + ticks(13) + ticks(14)
			continue
		}
		for _, g := range cpuGroups {
			if comm == g.comm {
				out[g.label] += ticks(11) + ticks(12)
			}
		}
	}
	return out
}

// cpuSince is the CPU time each group used since before.
func cpuSince(before map[string]time.Duration) map[string]time.Duration {
	now := cpuTimes()
	for k, v := range before {
		now[k] -= v
	}
	return now
}

// cpuMeter reads the CPU, in cores, that the cluster's processes and the operator used together
// since its previous reading.
type cpuMeter struct {
	at    time.Time
	times map[string]time.Duration
}

func newCPUMeter() *cpuMeter { return &cpuMeter{at: time.Now(), times: cpuTimes()} }

// read returns the cores used since the previous reading, and starts the next one; a window
// shorter than shortest is not read (false).
func (m *cpuMeter) read(shortest time.Duration) (float64, bool) {
	window := time.Since(m.at)
	if window < shortest {
		return 0, false
	}
	spent := cpuSince(m.times)
	var used time.Duration
	for _, g := range cpuGroups {
		used += spent[g.label]
	}
	m.at, m.times = time.Now(), cpuTimes()
	return float64(used) / float64(window), true
}

// quietMargin is how far above the idle cluster's CPU a cluster counts as quiet: what an idle
// cluster of thousands of instances spends more than an empty one, with room for a stray
// resync.
const quietMargin = 0.1

// quietCluster waits until the reconcilers are idle and the cluster's processes are back near
// the CPU they used idle before the first run (the namespace controller and the garbage
// collector still removing a previous run's tenants, or etcd compacting, would otherwise land
// in the next run's figures). It waits at most three minutes and says so if it gave up.
func (b *bench) quietCluster() {
	b.idle()
	start, meter, cores := time.Now(), newCPUMeter(), 0.0
	// Running out of time is not a failure: the run is measured anyway, and the log says so.
	quiet := NewGomega(func(string, ...int) {}).Eventually(func() bool {
		c, ok := meter.read(time.Second)
		if ok {
			cores = c
		}
		return ok && c <= b.baseline+quietMargin
	}).WithTimeout(3 * time.Minute).WithPolling(2 * time.Second).Should(BeTrue())
	if quiet {
		b.t.Logf("cluster quiet after %s (%.2f cores, idle %.2f)", time.Since(start).Round(time.Second), cores, b.baseline)
		return
	}
	b.t.Logf("cluster still busy after %s (%.2f cores, idle %.2f): measuring anyway", time.Since(start).Round(time.Second), cores, b.baseline)
}

// cpuTable prints CPU milliseconds per tenant by process, for every operator run and the bare
// run of the same orders.
func (r *report) cpuTable(w func(string, ...any)) {
	head, rule := "| run | orders |", "|---|---:|"
	for _, g := range cpuGroups {
		head += " " + g.label + " |"
		rule += "---:|"
	}
	w("CPU time per tenant by process (ms; `bench` is the bare client, the readiness watch, the Query Order simulator and `koosim load`):")
	w("")
	w("%s bench | total |", head)
	w("%s---:|---:|", rule)
	row := func(run string, orders int, cpu map[string]time.Duration) {
		line, total := fmt.Sprintf("| %s | %d |", run, orders), time.Duration(0)
		for _, g := range cpuGroups {
			line += fmt.Sprintf(" %.0f |", perTenant(cpu[g.label], orders))
			total += cpu[g.label]
		}
		total += cpu["bench"]
		w("%s %.0f | %.0f |", line, perTenant(cpu["bench"], orders), perTenant(total, orders))
	}
	for _, p := range r.Provision {
		run := fmt.Sprintf("operator, pair %d", p.Pair)
		if p.Audited {
			run = "operator, audited"
		}
		row(run, p.Orders, p.CPU)
		for _, bare := range r.Bare {
			if bare.Orders == p.Orders && bare.Pair == p.Pair && !p.Audited {
				row(fmt.Sprintf("%s, pair %d", bare.client(), bare.Pair), bare.Orders, bare.CPU)
			}
		}
	}
	w("")
}

func perTenant(d time.Duration, orders int) float64 {
	return float64(d) / float64(time.Millisecond) / float64(orders)
}
