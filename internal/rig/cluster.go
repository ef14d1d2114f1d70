package rig

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
)

// ClusterConfig describes a cluster for hack/cluster.sh. Ports must be free: each suite picks
// its own, so suites and `make dev` can run side by side, and below 32768, out of Linux's
// ephemeral range, where an outgoing connection could hold one by chance (etcd's peer port,
// EtcdPort+1, once did and failed a chaos run).
type ClusterConfig struct {
	Root   string // the repository
	Assets string // the control plane folder (KUBEBUILDER_ASSETS)
	State  string // the state folder; wiped on start
	// EtcdPort, APIPort, KCMPort and SchedulerPort pick the listening ports.
	EtcdPort, APIPort, KCMPort, SchedulerPort int
	Nodes, NodePods                           int
	// NodeCPU is each node's CPUs (memory: 8 GiB a CPU); hack/cluster.sh's default is 32.
	NodeCPU int
	// ControllerQPS raises the API rate limit of kcm and the scheduler (0: their defaults).
	ControllerQPS int
	// AuditPolicy, when set, is the API server's audit policy; the log is AuditLog().
	AuditPolicy string
	// OwnerPID is the process whose end stops the cluster, even if it ends without calling Stop
	// (a test binary killed by a timeout); 0 means this process.
	OwnerPID int
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg ClusterConfig
	// Admin is a cluster-admin client with the project's scheme and the CRD types.
	Admin client.Client
}

// StartCluster starts a cluster from an empty state folder. On failure nothing it started is
// left running.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{cfg: cfg}
	if err := c.start(ctx); err != nil {
		// The caller gets no Cluster to stop: the components a failed start launched go now.
		return nil, errors.Join(err, c.Stop())
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if out, err := c.script(ctx, "start"); err != nil {
		return fmt.Errorf("starting the cluster: %w\n%s", err, out)
	}
	rc, err := c.RESTConfig("admin")
	if err != nil {
		return err
	}
	s := scheme.New()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return err
	}
	c.Admin, err = client.New(rc, client.Options{Scheme: s})
	return err
}

// Stop stops every component; the state folder stays for post-mortems.
func (c *Cluster) Stop() error {
	if out, err := c.script(context.Background(), "stop"); err != nil {
		return fmt.Errorf("stopping the cluster: %w\n%s", err, out)
	}
	return nil
}

// Down stops one component (kube-apiserver, etcd…) until Up starts it again.
func (c *Cluster) Down(ctx context.Context, component string) error {
	if out, err := c.script(ctx, "down", component); err != nil {
		return fmt.Errorf("stopping %s: %w\n%s", component, err, out)
	}
	return nil
}

// Up restarts a component stopped by Down and waits until it is healthy.
func (c *Cluster) Up(ctx context.Context, component string) error {
	if out, err := c.script(ctx, "up", component); err != nil {
		return fmt.Errorf("starting %s: %w\n%s", component, err, out)
	}
	return nil
}

// Kubeconfig returns the kubeconfig of a user hack/cluster.sh made: "admin", or "operator"
// (cluster-admin as its own user, so audit logs tell the operator's requests apart).
func (c *Cluster) Kubeconfig(user string) string {
	return filepath.Join(c.cfg.State, user+".kubeconfig")
}

// RESTConfig loads Kubeconfig(user).
func (c *Cluster) RESTConfig(user string) (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.Kubeconfig(user))
}

// APIServerMetrics scrapes the API server's own metrics as the admin user.
func (c *Cluster) APIServerMetrics(ctx context.Context) (map[string]float64, error) {
	rc, err := c.RESTConfig("admin")
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	return scrape(ctx, hc, strings.TrimSuffix(rc.Host, "/")+"/metrics")
}

// AuditLog is where the API server writes its audit events when ClusterConfig.AuditPolicy is set.
func (c *Cluster) AuditLog() string { return filepath.Join(c.cfg.State, "logs", "audit.log") }

// Log is the log file of a component.
func (c *Cluster) Log(component string) string {
	return filepath.Join(c.cfg.State, "logs", component+".log")
}

// Kubectl returns a kubectl command acting as cluster-admin, run in the repository.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.Assets, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig("admin")}, args...)...)
	cmd.Dir = c.cfg.Root
	return cmd
}

// InstallCRDs applies the CRDs and the sample plans, and waits until the CRDs are served.
func (c *Cluster) InstallCRDs(ctx context.Context) error {
	out, err := c.Kubectl(ctx, "apply", "--server-side", "-f", "config/crd/bases", "-o", "name").Output()
	if err != nil {
		return fmt.Errorf("applying the CRDs: %w\n%s", err, stderrOf(err))
	}
	names, err := crdNames(out)
	if err != nil {
		return err
	}
	if err := waitEstablished(ctx, c.Admin, names, time.Minute); err != nil {
		return err
	}
	args := []string{"apply", "--server-side", "-f", "config/samples/saas_v1alpha1_marketplaceplan_basic.yaml",
		"-f", "config/samples/saas_v1alpha1_marketplaceplan_pro.yaml"}
	if out, err := c.Kubectl(ctx, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl %v: %w\n%s", args, err, out)
	}
	return nil
}

func stderrOf(err error) []byte {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.Stderr
	}
	return nil
}

// crdNames reads the CRD names out of `kubectl apply -o name`.
func crdNames(applied []byte) ([]string, error) {
	const prefix = "customresourcedefinition.apiextensions.k8s.io/"
	var names []string
	for _, line := range strings.Fields(string(applied)) {
		name, ok := strings.CutPrefix(line, prefix)
		if !ok {
			return nil, fmt.Errorf("kubectl apply named %q, not a CRD", line)
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, errors.New("kubectl apply named no CRD")
	}
	return names, nil
}

// WaitEstablished waits until every named CRD is served (waitEstablished), through r.
func WaitEstablished(ctx context.Context, r client.Reader, names ...string) error {
	return waitEstablished(ctx, r, names, time.Minute)
}

// waitEstablished polls until every named CRD has the condition Established=True. It does not
// use `kubectl wait --for=condition=Established`: right after a CRD is created it has no
// conditions yet, and kubectl wait then fails (".status.conditions accessor error") instead of
// waiting. A CRD not found yet, or a failed read, is one more poll.
func waitEstablished(ctx context.Context, r client.Reader, names []string, timeout time.Duration) error {
	var pending []string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pending, lastErr = pending[:0], nil
		for _, name := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := r.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
				lastErr = err
				pending = append(pending, name)
			} else if !apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
				pending = append(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("CRDs not established within %s: %s: %w", timeout, strings.Join(pending, ", "), errors.Join(err, lastErr))
	}
	return nil
}

func (c *Cluster) script(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.Root, "hack", "cluster.sh"), args...)
	env := map[string]string{
		"STATE": c.cfg.State, "BIN": c.cfg.Assets, "RESET": "1",
		"ETCD_PORT": itoa(c.cfg.EtcdPort), "API_PORT": itoa(c.cfg.APIPort),
		"KCM_PORT": itoa(c.cfg.KCMPort), "SCHED_PORT": itoa(c.cfg.SchedulerPort),
		"NODES": itoa(c.cfg.Nodes), "NODE_PODS": itoa(c.cfg.NodePods), "NODE_CPU": itoa(c.cfg.NodeCPU),
		"OWNER_PID": itoa(cmp.Or(c.cfg.OwnerPID, os.Getpid())),
	}
	if c.cfg.ControllerQPS > 0 {
		env["CONTROLLER_QPS"] = itoa(c.cfg.ControllerQPS)
	}
	if c.cfg.AuditPolicy != "" {
		env["AUDIT_POLICY"] = c.cfg.AuditPolicy
	}
	cmd.Env = os.Environ()
	for k, v := range env {
		if v != "0" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	return cmd.CombinedOutput()
}

func itoa(i int) string { return strconv.Itoa(i) }

// Build compiles the named commands of cmd/ into dir and returns dir.
func Build(ctx context.Context, root, dir string, commands ...string) error {
	for _, name := range commands {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", name, err, out)
		}
	}
	return nil
}

// APIServerProfile writes a CPU profile of the API server over the next seconds to path, as
// the admin user: the bench compares where the API server spends its time for the operator's
// tenants and for the same objects from a bare client.
func (c *Cluster) APIServerProfile(ctx context.Context, seconds int, path string) error {
	rc, err := c.RESTConfig("admin")
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(rc.Host, "/"), seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
