//go:build e2e

// Package e2e proves the product as installed, on a full local cluster (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok fake nodes from hack/cluster.sh): install
// with kubectl and with Helm, run the operator as the shipped ServiceAccount, drive a buyer's
// whole lifecycle with the KooGallery simulator, and uninstall without leftovers.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/rig"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

var (
	root       = testenv.RepoRoot()
	assets     string // the control plane folder: kubectl, helm
	binDir     string // manager and koosim built for this run
	kubeconfig string // cluster-admin
	admin      client.Client
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	assets = os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return 0, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make test-e2e`")
	}
	tmp, err := os.MkdirTemp("", "mpo-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	binDir = filepath.Join(tmp, "bin")
	if err := rig.Build(context.Background(), root, binDir, "manager", "koosim"); err != nil {
		return 0, err
	}
	start := time.Now()
	c, err := rig.StartCluster(context.Background(), rig.ClusterConfig{
		Root: root, Assets: assets, State: filepath.Join(tmp, "cluster"),
		EtcdPort: 30379, APIPort: 30443, KCMPort: 30257, SchedulerPort: 30259, Nodes: 2,
	})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "e2e: cluster up in %s\n", time.Since(start).Round(100*time.Millisecond))
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		}
	}()
	kubeconfig, admin = c.Kubeconfig("admin"), c.Admin
	return m.Run(), nil
}

// kubectl runs the control plane's kubectl as cluster-admin in the repository root.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return tool(t, filepath.Join(assets, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	return tool(t, filepath.Join(assets, "helm"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
}

func tool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// keys writes a keys folder as the Secret mounts it, and returns it.
func keys(t *testing.T, values map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := rig.WriteKeys(dir, values); err != nil {
		t.Fatal(err)
	}
	return dir
}

// impersonating writes a kubeconfig that acts as the ServiceAccount: the operator run with it
// has exactly the permissions the install gave it.
func impersonating(t *testing.T, namespace, serviceAccount string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = "system:serviceaccount:" + namespace + ":" + serviceAccount
		auth.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startOperator runs the manager with the given kubeconfig and keys, its Query Order calls
// going to openAPIURL, and stops it when the test ends.
func startOperator(t *testing.T, kc, keysDir, openAPIURL, leaseNamespace string) *rig.Operator {
	t.Helper()
	op, err := rig.StartOperator(ctx(t), rig.OperatorConfig{
		Binary: filepath.Join(binDir, "manager"), Kubeconfig: kc, KeysDir: keysDir,
		OpenAPIURL: openAPIURL, LeaseNamespace: leaseNamespace,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		op.Stop()
		if t.Failed() {
			t.Logf("operator log:\n%s", op.Tail(60))
		}
	})
	return op
}

// openAPI serves Query Order in the test process, as KooGallery would.
func openAPI(t *testing.T, ak, sk string) (*simulator.OpenAPIServer, string) {
	t.Helper()
	srv := simulator.NewOpenAPIServer(ak, sk)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}
