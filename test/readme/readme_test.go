package readme

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

// Generous bounds: `make test` runs this beside every other package, on as few as two cores, and
// the copy's own packages compile afresh (Go keys them on their folder).
const (
	stepTimeout       = 8 * time.Minute
	backgroundTimeout = 8 * time.Minute
	stopTimeout       = time.Minute
)

// TestReadmeBlocks runs every README shell block marked to run, in order, in a fresh copy of the
// repository, as a newcomer would: no kubectl, helm or koosim on PATH, no KUBECONFIG.
func TestReadmeBlocks(t *testing.T) {
	if _, err := testenv.Assets(); err != nil {
		t.Fatal(err)
	}
	root := testenv.RepoRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parse(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "marketplace-operator")
	if err := copyTree(root, work); err != nil {
		t.Fatal(err)
	}
	sh := newShell(t, work)
	for _, b := range blocks {
		if b.skip != "" {
			t.Logf("README:%d: not run: %s", b.line, b.skip)
			continue
		}
		start := time.Now()
		var out bytes.Buffer
		for _, s := range b.steps() {
			if s.background.prefix != "" {
				if err := sh.background(s); err != nil {
					t.Fatalf("README:%d: %s: %v", b.line, strings.TrimSpace(s.script), err)
				}
				continue
			}
			o, err := sh.run(s.script)
			out.WriteString(o)
			if err != nil {
				t.Fatalf("README:%d: the block fails as written: %v\n%s\n--- output:\n%s%s", b.line, err, s.script, o, sh.devLogs())
			}
		}
		for _, want := range b.expect {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("README:%d: the block's output lacks %q:\n%s", b.line, want, out.String())
			}
		}
		t.Logf("README:%d: ran in %s", b.line, time.Since(start).Round(100*time.Millisecond))
	}
}

// shell runs README lines in bash, in one working copy, carrying exported variables from one
// step to the next through a file, as one terminal would.
type shell struct {
	t       *testing.T
	dir     string
	envFile string
}

// newShell prepares the environment of a fresh machine that has the project's prerequisites:
// the tools the README says to install, none it says the project provides. Ports are picked
// free so that a `make dev` of one's own can keep running.
func newShell(t *testing.T, dir string) *shell {
	t.Helper()
	shims := t.TempDir()
	for _, tool := range []string{"kubectl", "helm", "koosim"} {
		script := "#!/bin/sh\necho \"$0: not on a fresh machine's PATH: the README must say where it comes from\" >&2\nexit 127\n"
		if err := os.WriteFile(filepath.Join(shims, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fresh := map[string]string{"PATH": shims + ":" + os.Getenv("PATH"),
		// The cluster `make dev` starts stops if this test dies before its cleanup.
		"OWNER_PID": strconv.Itoa(os.Getpid())}
	for _, name := range []string{"DEV_PORT", "ETCD_PORT", "API_PORT", "KCM_PORT", "SCHED_PORT"} {
		port, err := freePorts(3) // DEV_PORT+1 and +2, and etcd's peer port on ETCD_PORT+1
		if err != nil {
			t.Fatal(err)
		}
		fresh[name] = strconv.Itoa(port)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case fresh[k] != "", k == "KUBECONFIG", strings.HasPrefix(k, "KOOSIM_"), k == "DEV_DIR", k == "STATE",
			k == "BIN", k == "MAKEFLAGS", k == "MAKELEVEL", k == "MFLAGS":
		default:
			env = append(env, kv)
		}
	}
	for k, v := range fresh {
		env = append(env, k+"="+v)
	}
	s := &shell{t: t, dir: dir, envFile: filepath.Join(t.TempDir(), "env.sh")}
	cmd := exec.Command("bash", "-c", `export -p >"$1"`, "bash", s.envFile)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writing the shell's environment: %v\n%s", err, out)
	}
	return s
}

// run runs lines to their end and keeps what they exported.
func (s *shell) run(lines string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	script := "set -euo pipefail\n. \"$1\"\ncd \"$2\"\n" + lines + "\nexport -p >\"$1\"\n"
	cmd := exec.CommandContext(ctx, "bash", "-c", script, "bash", s.envFile, s.dir)
	cmd.Dir, cmd.Env = s.dir, []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("not done after %s", stepTimeout)
	}
	return string(out), err
}

// background starts a command that keeps running, and waits until its output says it is up.
// The test's end interrupts its whole process group, as Ctrl-C would, and waits for it to stop.
func (s *shell) background(st step) error {
	script := "set -euo pipefail\n. \"$1\"\ncd \"$2\"\n" + st.script + "\n"
	cmd := exec.Command("bash", "-c", script, "bash", s.envFile, s.dir)
	cmd.Dir, cmd.Env = s.dir, []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	var mu sync.Mutex
	var log strings.Builder
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), st.background.until) {
				signalled = true
				close(up)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		_ = pw.Close()
		done <- err
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
	s.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			s.t.Errorf("%s did not stop within %s of Ctrl-C:\n%s", strings.TrimSpace(st.script), stopTimeout, output())
		}
	})
	select {
	case <-up:
		return nil
	case err := <-done:
		return fmt.Errorf("exited before its output said %q: %v\n%s", st.background.until, err, output())
	case <-time.After(backgroundTimeout):
		return fmt.Errorf("its output did not say %q within %s:\n%s", st.background.until, backgroundTimeout, output())
	}
}

// devLogs is the end of `make dev`'s logs, if it ran, to explain a failed block.
func (s *shell) devLogs() string {
	var b strings.Builder
	for _, name := range []string{"manager.log", "koosim.log"} {
		data, err := os.ReadFile(filepath.Join(s.dir, ".dev", "logs", name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "--- make dev's %s (end):\n%s\n", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
	}
	return b.String()
}

// copyTree copies the files git knows of (tracked, or new and not ignored) as they are in the
// working tree: the README is tested with the code beside it, without the caller's bin/ or .dev/.
func copyTree(root, dst string) error {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	list, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("listing the repository's files: %w", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if info.Mode()&os.ModeSymlink != 0 {
			link, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// freePorts returns the first of n consecutive ports that are free now, below the kernel's
// ephemeral range (where envtest and outgoing connections take theirs) and clear of the fixed
// ports of hack/cluster.sh's defaults and of the e2e, chaos and bench suites.
func freePorts(n int) (int, error) {
	for range 100 {
		base := 23000 + rand.IntN(3000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				free = false
				continue
			}
			_ = ln.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no free ports")
}
