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
	. "github.com/onsi/gomega"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// The e2e cluster's ports differ from hack/cluster.sh's defaults so that `make dev` can run
// at the same time.
var clusterPorts = []string{"ETCD_PORT=32379", "API_PORT=36443", "KCM_PORT=30257", "SCHED_PORT=30259"}

var (
	root       = testenv.RepoRoot()
	assets     string // the control plane folder: kubectl, helm
	binDir     string // manager and koosim built for this run
	state      string // the cluster's state folder
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
	binDir, state = filepath.Join(tmp, "bin"), filepath.Join(tmp, "cluster")
	for _, cmd := range []string{"manager", "koosim"} {
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "./cmd/"+cmd)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("building %s: %w\n%s", cmd, err, out)
		}
	}
	start := time.Now()
	if out, err := cluster("start"); err != nil {
		return 0, fmt.Errorf("starting the cluster: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: cluster up in %s\n", time.Since(start).Round(100*time.Millisecond))
	defer func() {
		if out, err := cluster("stop"); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: stopping the cluster: %v\n%s", err, out)
		}
	}()
	kubeconfig = filepath.Join(state, "admin.kubeconfig")
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return 0, err
	}
	s := scheme.New()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return 0, err
	}
	if admin, err = client.New(cfg, client.Options{Scheme: s}); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func cluster(verb string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(root, "hack", "cluster.sh"), verb)
	cmd.Env = append(os.Environ(), append(clusterPorts, "STATE="+state, "BIN="+assets, "NODES=2", "RESET=1")...)
	return cmd.CombinedOutput()
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

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// keys writes a keys folder as the Secret mounts it, and returns it.
func keys(t *testing.T, values map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range values {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
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

// operatorProcess is the manager binary running out of cluster.
type operatorProcess struct {
	cmd         *exec.Cmd
	log         *bytes.Buffer
	marketplace string        // base URL of the marketplace endpoint
	done        chan struct{} // closed when the process exited; err holds why
	err         error
}

// startOperator runs the manager with the given kubeconfig and keys, its Query Order calls
// going to openAPIURL, and stops it when the test ends.
func startOperator(t *testing.T, kc, keysDir, openAPIURL, leaseNamespace string) *operatorProcess {
	t.Helper()
	addr, probe := freePort(t), freePort(t)
	log := &bytes.Buffer{}
	cmd := exec.Command(filepath.Join(binDir, "manager"),
		"--kubeconfig", kc,
		"--marketplace-bind-address", addr, "--marketplace-keys-dir", keysDir,
		"--koogallery-api-url", openAPIURL,
		"--health-probe-bind-address", probe, "--metrics-bind-address", "0",
		"--leader-elect", "--leader-election-namespace", leaseNamespace,
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &operatorProcess{cmd: cmd, log: log, marketplace: "http://" + addr, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("operator log:\n%s", tail(log.String(), 60))
		}
	})
	waitHTTP(t, "http://"+probe+"/readyz", p)
	return p
}

// stop interrupts the operator and waits until it has shut down.
func (p *operatorProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func waitHTTP(t *testing.T, url string, p *operatorProcess) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		select {
		case <-p.done:
			return StopTrying(fmt.Sprintf("the operator exited: %v\n%s", p.err, tail(p.log.String(), 40)))
		default:
		}
		return exec.Command("curl", "-fs", url).Run()
	}).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "the operator was not ready:\n%s", tail(p.log.String(), 40))
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
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
