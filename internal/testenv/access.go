package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The manager's identity as `kubectl apply -k config/default` installs it.
const (
	OperatorNamespace     = "marketplace-operator-system"
	ManagerServiceAccount = "marketplace-operator-controller-manager"
)

// ManagerUser is the user name the API server gives the manager's ServiceAccount.
const ManagerUser = "system:serviceaccount:" + OperatorNamespace + ":" + ManagerServiceAccount

// accessKinds are the objects of the kubectl install that decide what the manager may do.
var accessKinds = map[string]bool{
	"Namespace": true, "ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"Role": true, "RoleBinding": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
}

// InstallAccess installs what config/default ships that decides the manager's access (its
// namespace and ServiceAccount, RBAC, admission policies), waits until the admission policies
// are enforced, and sets ManagerConfig, which acts as the manager's ServiceAccount. Suites run
// the manager with it, so every test they run also proves that the shipped permissions suffice.
func (e *Env) InstallAccess(ctx context.Context) error {
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", filepath.Join(RepoRoot(), "config", "default")) //nolint:gosec // the control plane's own kubectl
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("kubectl kustomize config/default: %w: %s", err, stderr.String())
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("decoding config/default: %w", err)
		}
		if !accessKinds[u.GetKind()] {
			continue
		}
		if err := e.Client.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	cfg := ImpersonateManager(e.Config)
	if err := awaitPolicies(ctx, cfg); err != nil {
		return err
	}
	e.ManagerConfig = cfg
	return nil
}

// ImpersonateManager returns a copy of cfg (a cluster-admin's) that acts as the manager's
// ServiceAccount, with the groups the API server gives a ServiceAccount token.
func ImpersonateManager(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: ManagerUser,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + OperatorNamespace, "system:authenticated"},
	}
	return c
}

// awaitPolicies waits until the admission policies are loaded: the API server compiles them
// a moment after they are created, and a suite that starts before would test without them.
func awaitPolicies(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return fmt.Errorf("creating the manager's client: %w", err)
	}
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "access-probe", Namespace: metav1.NamespaceDefault}}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := c.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "marketplace operator may only write") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager-scope admission policy is not enforced after a minute (last answer: %w)", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
