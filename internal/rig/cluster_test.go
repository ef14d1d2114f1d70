package rig

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

// A cluster whose owner ends without stopping it (a test binary killed by a timeout) stops by
// itself, so it holds no ports and no CPU for the next run.
func TestClusterStopsWhenItsOwnerIsGone(t *testing.T) {
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	owner := exec.Command("sleep", "600")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{
		Root: testenv.RepoRoot(), Assets: assets, State: filepath.Join(t.TempDir(), "cluster"),
		EtcdPort: 31379, APIPort: 31443, KCMPort: 31257, SchedulerPort: 31259, Nodes: 1,
		OwnerPID: owner.Process.Pid,
	})
	if err != nil {
		_ = owner.Process.Kill()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	status := func() string {
		out, err := c.script(ctx, "status")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return string(out)
	}
	if s := status(); strings.Contains(s, "stopped") {
		t.Fatalf("not running while its owner is:\n%s", s)
	}

	if err := owner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = owner.Wait()
	NewWithT(t).Eventually(status).WithTimeout(time.Minute).WithPolling(200*time.Millisecond).
		ShouldNot(ContainSubstring("running"), "still running a minute after its owner ended")
}
