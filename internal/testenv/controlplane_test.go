package testenv_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
)

// pins are the versions hack/control-plane.sh pins, read from the script itself.
func pins(t *testing.T) map[string]string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "hack", "control-plane.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^K8S=(\S+) ETCD=(\S+) KWOK=(\S+) HELM=(\S+)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("hack/control-plane.sh no longer pins K8S, ETCD, KWOK and HELM on one line")
	}
	k8s := "v" + string(m[1])
	return map[string]string{"etcd": "v" + string(m[2]), "kube-apiserver": k8s, "kube-controller-manager": k8s,
		"kube-scheduler": k8s, "kubectl": k8s, "kwok": "v" + string(m[3]), "helm": "v" + string(m[4])}
}

// fakeBinary writes a script that reports version as NAME does.
func fakeBinary(t *testing.T, dir, name, version string) {
	t.Helper()
	out := map[string]string{
		"etcd":    "etcd Version: " + strings.TrimPrefix(version, "v") + "\nGit SHA: Not provided",
		"kubectl": "Client Version: " + version + "\nKustomize Version: v5.8.1",
		"kwok":    "kwok version " + version + " go1.26 (linux/amd64)",
		"helm":    version + "+g0123456",
	}[name]
	if out == "" {
		out = "Kubernetes " + version
	}
	script := "#!/bin/sh\ncat <<'EOF'\n" + out + "\nEOF\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// userAssets is a folder of binaries at the pinned versions, as a user who built or downloaded
// them has, with the given versions overridden ("" leaves the binary out).
func userAssets(t *testing.T, override map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, version := range pins(t) {
		if v, ok := override[name]; ok {
			version = v
		}
		if version != "" {
			fakeBinary(t, dir, name, version)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kwok-stages.yaml"), []byte("kind: Stage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// noBuild is the environment of a run that must not build: an empty cache, and a `go` that fails
// loudly, so a script that ignored KUBEBUILDER_ASSETS would stop at once instead of building for
// a quarter of an hour.
func noBuild(t *testing.T, assets string) []string {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte("#!/bin/sh\necho 'go was run: a build started' >&2\nexit 97\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"KUBEBUILDER_ASSETS=" + assets, "MPO_CACHE_DIR=" + t.TempDir(), "PATH=" + bin + ":" + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "KUBEBUILDER_ASSETS" && k != "MPO_CACHE_DIR" && k != "PATH" {
			env = append(env, kv)
		}
	}
	return env
}

func run(t *testing.T, env []string, dir, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestControlPlaneHonoursUserAssets: binaries the user already has are used as they are, with no
// build, when each reports the pinned version; a relative folder is printed absolute, because
// `go test` runs each package in its own directory.
func TestControlPlaneHonoursUserAssets(t *testing.T) {
	assets := userAssets(t, nil)
	script := filepath.Join(testenv.RepoRoot(), "hack", "control-plane.sh")
	env := noBuild(t, filepath.Base(assets))
	for i := range 2 { // the second run answers from the remembered check
		out, errOut, err := run(t, env, filepath.Dir(assets), script)
		if err != nil || strings.TrimSpace(out) != assets {
			t.Fatalf("run %d: hack/control-plane.sh with KUBEBUILDER_ASSETS set = %q, %v; want %q\n%s", i+1, out, err, assets, errOut)
		}
	}
	if _, errOut, err := run(t, env, filepath.Dir(assets), script, "--check"); err != nil {
		t.Fatalf("--check: %v\n%s", err, errOut)
	}
}

// TestControlPlaneRefusesOtherVersions: a folder at other versions, or missing a binary, is
// refused with what was found, what is pinned and how to fix it, and nothing is built; a binary
// replaced after a passed check is checked again.
func TestControlPlaneRefusesOtherVersions(t *testing.T) {
	p := pins(t)
	script := filepath.Join(testenv.RepoRoot(), "hack", "control-plane.sh")

	assets := userAssets(t, map[string]string{"kube-apiserver": "v1.35.0", "helm": ""})
	out, errOut, err := run(t, noBuild(t, assets), "", script)
	if err == nil || out != "" {
		t.Fatalf("hack/control-plane.sh accepted a folder with an older kube-apiserver and no helm: %q, %v", out, err)
	}
	for _, want := range []string{
		"KUBEBUILDER_ASSETS=" + assets,
		"kube-apiserver", "found v1.35.0, expected " + p["kube-apiserver"],
		"helm", "missing, expected " + p["helm"],
		"unset KUBEBUILDER_ASSETS",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "a build started") {
		t.Errorf("a build started:\n%s", errOut)
	}

	// Only what is asked for is checked: envtest needs three of them.
	if _, errOut, err := run(t, noBuild(t, assets), "", script, "--check", "etcd", "kubectl"); err != nil {
		t.Errorf("--check etcd kubectl refused a folder where both are pinned: %v\n%s", err, errOut)
	}

	good := userAssets(t, nil)
	env := noBuild(t, good)
	if _, errOut, err := run(t, env, "", script); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	fakeBinary(t, good, "kubectl", "v1.34.10")
	if _, errOut, err := run(t, env, "", script); err == nil || !strings.Contains(errOut, "found v1.34.10, expected "+p["kubectl"]) {
		t.Errorf("a kubectl replaced after a passed check was not checked again: %v\n%s", err, errOut)
	}
}

// TestMakeHonoursUserAssets: the Makefile's targets get their control plane from the script, so
// a user's folder is used by them, and refused by them, the same way.
func TestMakeHonoursUserAssets(t *testing.T) {
	root := testenv.RepoRoot()
	if _, errOut, err := run(t, noBuild(t, userAssets(t, nil)), root, "make", "--no-print-directory", "control-plane"); err != nil {
		t.Errorf("make control-plane with the user's pinned binaries: %v\n%s", err, errOut)
	}
	_, errOut, err := run(t, noBuild(t, userAssets(t, map[string]string{"etcd": "v3.5.21"})), root, "make", "--no-print-directory", "control-plane")
	if err == nil || !strings.Contains(errOut, "found v3.5.21, expected "+pins(t)["etcd"]) {
		t.Errorf("make control-plane with an older etcd: %v\n%s", err, errOut)
	}
}

// TestAssetsChecksVersions: tests run with `go test` and a KUBEBUILDER_ASSETS set by hand fail
// at once, saying why, when the folder is not the pinned control plane.
func TestAssetsChecksVersions(t *testing.T) {
	t.Setenv("MPO_CACHE_DIR", t.TempDir())
	t.Setenv("KUBEBUILDER_ASSETS", userAssets(t, map[string]string{"kube-apiserver": "v1.33.1"}))
	_, err := testenv.Assets()
	if err == nil || !strings.Contains(err.Error(), "found v1.33.1, expected "+pins(t)["kube-apiserver"]) {
		t.Fatalf("Assets() with an older kube-apiserver: %v", err)
	}
	good := userAssets(t, map[string]string{"helm": ""}) // envtest does not run helm
	t.Setenv("KUBEBUILDER_ASSETS", good)
	if got, err := testenv.Assets(); err != nil || got != good {
		t.Fatalf("Assets() = %q, %v; want %q", got, err, good)
	}
}
