package rig

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// OperatorConfig describes one manager process.
type OperatorConfig struct {
	Binary     string // the manager binary
	Kubeconfig string
	KeysDir    string // the keys folder, as the Secret mounts it
	OpenAPIURL string // where Query Order calls go
	// LeaseNamespace turns leader election on, with its Lease in that namespace.
	LeaseNamespace string
	// Metrics serves the metrics endpoint over plain HTTP on loopback (MetricsURL).
	Metrics bool
	// Pprof serves net/http/pprof on loopback (PprofURL).
	Pprof bool
	// Args are further manager flags.
	Args []string
	// Env are further KEY=VALUE variables of the process's environment (GOMEMLIMIT, say).
	Env []string
	// LogFile receives the process's output, appended; empty keeps it in memory only.
	LogFile string
}

// Operator is a running manager process. Its addresses stay the same across restarts, as a
// Pod's do.
type Operator struct {
	cfg                                            OperatorConfig
	MarketplaceURL, ProbeURL, MetricsURL, PprofURL string
	addrs                                          []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	started time.Time
	log     *LockedBuffer
	done    chan struct{} // closed when the current process has exited
	err     error
}

// StartOperator runs the manager and waits until it is ready.
func StartOperator(ctx context.Context, cfg OperatorConfig) (*Operator, error) {
	o := &Operator{cfg: cfg, log: &LockedBuffer{}}
	addrs, err := FreeAddrs(4)
	if err != nil {
		return nil, err
	}
	o.addrs = addrs
	o.MarketplaceURL, o.ProbeURL = "http://"+o.addrs[0], "http://"+o.addrs[1]
	if cfg.Metrics {
		o.MetricsURL = "http://" + o.addrs[2]
	}
	if cfg.Pprof {
		o.PprofURL = "http://" + o.addrs[3]
	}
	if err := o.Start(ctx); err != nil {
		// The caller gets no Operator to stop, so a process that never became ready must not
		// outlive this call.
		o.Kill()
		return nil, err
	}
	return o, nil
}

// Start (re)starts the process after Stop or Kill, and waits until it is ready.
func (o *Operator) Start(ctx context.Context) error {
	if err := o.Launch(); err != nil {
		return err
	}
	return o.WaitReady(ctx)
}

// Launch starts the process without waiting for it to be ready.
func (o *Operator) Launch() error {
	args := []string{
		"--kubeconfig", o.cfg.Kubeconfig,
		"--marketplace-bind-address", o.addrs[0], "--marketplace-keys-dir", o.cfg.KeysDir,
		"--koogallery-api-url", o.cfg.OpenAPIURL,
		"--health-probe-bind-address", o.addrs[1],
	}
	if o.cfg.Metrics {
		args = append(args, "--metrics-bind-address", o.addrs[2], "--metrics-secure=false")
	} else {
		args = append(args, "--metrics-bind-address", "0")
	}
	if o.cfg.Pprof {
		args = append(args, "--pprof-bind-address", o.addrs[3])
	}
	if o.cfg.LeaseNamespace != "" {
		args = append(args, "--leader-elect", "--leader-election-namespace", o.cfg.LeaseNamespace)
	}
	cmd := exec.Command(o.cfg.Binary, append(args, o.cfg.Args...)...)
	cmd.Env = append(os.Environ(), o.cfg.Env...)
	var out io.Writer = o.log
	var logFile *os.File
	if o.cfg.LogFile != "" {
		f, err := os.OpenFile(o.cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		// Open until the process exits: exec copies its output here through a pipe, and a
		// closed file would end the copy and kill the process with SIGPIPE.
		logFile, out = f, io.MultiWriter(o.log, f)
	}
	cmd.Stdout, cmd.Stderr = out, out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd != nil && !o.exited() {
		return errors.New("the operator is already running")
	}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			_ = logFile.Close()
		}
		return fmt.Errorf("starting the manager: %w", err)
	}
	done := make(chan struct{})
	o.cmd, o.done, o.started = cmd, done, time.Now()
	go func() {
		err := cmd.Wait()
		if logFile != nil {
			_ = logFile.Close()
		}
		o.mu.Lock()
		o.err = err
		o.mu.Unlock()
		close(done)
	}()
	return nil
}

func (o *Operator) exited() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// WaitReady waits until /readyz answers 200, or fails if the process exits first.
func (o *Operator) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	o.mu.Lock()
	done := o.done
	o.mu.Unlock()
	for {
		if resp, err := http.Get(o.ProbeURL + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("the operator exited: %w\n%s", o.Err(), o.Tail(40))
		case <-ctx.Done():
			return fmt.Errorf("the operator was not ready: %w\n%s", ctx.Err(), o.Tail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Started is when the current process was started.
func (o *Operator) Started() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.started
}

// Pid is the current process's ID.
func (o *Operator) Pid() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cmd.Process.Pid
}

// Err is why the last process exited.
func (o *Operator) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Stop interrupts the process (as the kubelet's SIGTERM does) and waits until it has exited.
func (o *Operator) Stop() { o.signal(syscall.SIGTERM, 60*time.Second) }

// Kill ends the process with SIGKILL: no shutdown, no Lease release.
func (o *Operator) Kill() { o.signal(syscall.SIGKILL, 0) }

func (o *Operator) signal(sig syscall.Signal, grace time.Duration) {
	o.mu.Lock()
	cmd, done := o.cmd, o.done
	o.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// RSS is the process's resident set size in bytes.
func (o *Operator) RSS() (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(o.Pid()), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// Log is everything the process (and its earlier runs) printed.
func (o *Operator) Log() string { return o.log.String() }

// Tail is the last lines of Log.
func (o *Operator) Tail(lines int) string {
	l := strings.Split(o.Log(), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// FreeAddrs returns n loopback addresses nothing listens on, all different: each is held until
// the last is chosen, since a port just let go may be handed out again at once (two of one
// manager's servers once got the same port and it could not start).
func FreeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// WriteKeys writes a keys folder as the Secret mounts it.
func WriteKeys(dir string, values map[string]string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, v := range values {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// LockedBuffer is an output sink safe for concurrent writers (a process's pipes, a manager's
// goroutines).
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Metrics scrapes the metrics endpoint (OperatorConfig.Metrics) into a map from each sample's
// name with its labels, as exposed (`rest_client_requests_total{code="200",...}`), to its value.
func (o *Operator) Metrics(ctx context.Context) (map[string]float64, error) {
	if o.MetricsURL == "" {
		return nil, errors.New("the operator serves no metrics: set OperatorConfig.Metrics")
	}
	return scrape(ctx, http.DefaultClient, o.MetricsURL+"/metrics")
}

// scrape fetches a metrics endpoint and parses it.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads a Prometheus text exposition into samples keyed by name{labels}.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	samples := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			samples[line[:i]] = v
		}
	}
	return samples, sc.Err()
}

// Counts writes a tally such as answer codes as "000000×12 000004×3", keys sorted.
func Counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// Sum adds the samples of one metric whose labels contain every given `name="value"` pair.
func Sum(samples map[string]float64, metric string, labels ...string) float64 {
	var total float64
	for k, v := range samples {
		if !strings.HasPrefix(k, metric+"{") && k != metric {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(k, l) {
				match = false
				break
			}
		}
		if match {
			total += v
		}
	}
	return total
}
