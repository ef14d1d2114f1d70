package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/scheme"
)

// Env is a running API server with the project's CRDs installed.
type Env struct {
	Environment *envtest.Environment
	Config      *rest.Config
	Scheme      *k8sruntime.Scheme
	// Client talks to the API server directly, without a cache, as cluster-admin.
	Client client.Client
	// ManagerConfig acts as the manager's ServiceAccount under the shipped RBAC and admission
	// policies, once InstallAccess has run.
	ManagerConfig *rest.Config
}

// RepoRoot is the repository root, found from this file's location so tests in any package
// can name repository files.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Scheme returns a scheme with the built-in kinds and this project's API.
func Scheme() *k8sruntime.Scheme { return scheme.New() }

// envtestBinaries are what Start and Kubectl run.
var envtestBinaries = []string{"etcd", "kube-apiserver", "kubectl"}

// Assets returns the control plane folder that KUBEBUILDER_ASSETS names, or an error saying how
// to set it: the tests that need it fail rather than skip. A folder the user set by hand must
// hold the pinned versions (hack/control-plane.sh --check), or a test would run against an API
// server other than the one the project pins and fail for reasons of its own.
func Assets() (string, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return "", errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or " +
			"`export KUBEBUILDER_ASSETS=$(hack/control-plane.sh)` before `go test`")
	}
	check := exec.Command(filepath.Join(RepoRoot(), "hack", "control-plane.sh"), append([]string{"--check"}, envtestBinaries...)...)
	if out, err := check.CombinedOutput(); err != nil {
		return "", fmt.Errorf("checking KUBEBUILDER_ASSETS: %w\n%s", err, out)
	}
	return assets, nil
}

// Start starts etcd and kube-apiserver and installs the CRDs from config/crd/bases.
func Start() (*Env, error) {
	if _, err := Assets(); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	s := Scheme()
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return &Env{Environment: env, Config: cfg, Scheme: s, Client: c}, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error { return e.Environment.Stop() }

// Kubectl returns the path of the kubectl built with the control plane and a kubeconfig file
// for this API server, written under dir.
func (e *Env) Kubectl(dir string) (kubectl, kubeconfig string, err error) {
	user, err := e.Environment.ControlPlane.AddUser(envtest.User{Name: "kubectl", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", "", fmt.Errorf("adding kubectl user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", "", fmt.Errorf("rendering kubeconfig: %w", err)
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return "", "", fmt.Errorf("writing kubeconfig: %w", err)
	}
	return filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl"), kubeconfig, nil
}

// InstanceGVK and PlanGVK are the kinds of this project, for unstructured objects in tests.
var (
	InstanceGVK = saasv1alpha1.GroupVersion.WithKind("MarketplaceInstance")
	PlanGVK     = saasv1alpha1.GroupVersion.WithKind("MarketplacePlan")
)
