package packaging

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDockerfileBuildsWithTheToolchainOfGoMod: the builder image's Go is the toolchain go.mod
// names (the image does not switch toolchains), so the image is built with the Go that
// hack/govulncheck.sh checked.
func TestDockerfileBuildsWithTheToolchainOfGoMod(t *testing.T) {
	t.Parallel()
	gomod := readRepoFile(t, "go.mod")
	m := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod names no toolchain")
	}
	dockerfile := readRepoFile(t, "Dockerfile")
	want := "ARG BUILDER_IMAGE=golang:" + m[1] + "\n"
	if !strings.Contains(dockerfile, want) {
		t.Errorf("the Dockerfile does not say %q (go.mod's toolchain)", strings.TrimSpace(want))
	}
	if !strings.Contains(dockerfile, "FROM ${BUILDER_IMAGE} AS build") || !strings.Contains(dockerfile, "FROM ${BASE_IMAGE}\n") {
		t.Error("the Dockerfile's stages must come from the BUILDER_IMAGE and BASE_IMAGE arguments, so a release can pin them by digest")
	}
}

// TestGovulncheckRefusesAStaleDatabase runs hack/govulncheck.sh on a cached vulnerability
// database of a given age, with the module proxy off (so the cached database is what it gets)
// and a stand-in for govulncheck that reports nothing: a database older than
// MPO_VULNDB_MAX_AGE_DAYS (60 by default), or of unknown age, must fail the run before any scan.
func TestGovulncheckRefusesAStaleDatabase(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run hack/govulncheck.sh")
	}
	script := readRepoFile(t, "hack/govulncheck.sh")
	m := regexp.MustCompile(`(?m)^GOVULNCHECK_VERSION=(\S+)`).FindStringSubmatch(script)
	if m == nil {
		t.Fatal("hack/govulncheck.sh pins no GOVULNCHECK_VERSION")
	}
	goVersion := strings.TrimSpace(string(goEnv(t, "GOVERSION")))
	day := 24 * time.Hour
	cases := []struct {
		name     string
		modified string // index/db.json's modified time
		maxAge   string // MPO_VULNDB_MAX_AGE_DAYS
		code     int
		says     string
	}{
		{name: "fresh", modified: stamp(2 * day), code: 0, says: "fake govulncheck -db file://"},
		{name: "stale", modified: stamp(75 * day), code: 4, says: "75 days old, older than 60 days"},
		{name: "stale, but within a raised limit", modified: stamp(75 * day), maxAge: "90", code: 0, says: "fake govulncheck"},
		{name: "within a lowered limit", modified: stamp(10 * day), maxAge: "7", code: 4, says: "older than 7 days"},
		{name: "age unknown", modified: "", code: 4, says: "cannot tell when"},
		{name: "age unreadable", modified: "last tuesday", code: 4, says: "cannot tell when"},
		{name: "bad limit", modified: stamp(day), maxAge: "soon", code: 2, says: "must be a whole number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			dir := filepath.Join(cache, "govulncheck")
			writeFile(t, filepath.Join(dir, "db", ".stamp"), "vulndb=v0.0.0-test indexdb=v0.0.0-test\n")
			writeFile(t, filepath.Join(dir, "db", "index", "db.json"), `{"modified":"`+tc.modified+`"}`)
			fake := filepath.Join(dir, "bin", goVersion, "govulncheck-"+m[1])
			writeFile(t, fake, "#!/bin/sh\necho \"fake govulncheck $*\"\n")
			if err := os.Chmod(fake, 0o755); err != nil { //nolint:gosec // a test's stand-in program
				t.Fatal(err)
			}
			cmd := exec.Command("bash", filepath.Join(chartRepoRoot, "hack", "govulncheck.sh"))
			cmd.Env = append(os.Environ(), "MPO_CACHE_DIR="+cache, "GOPROXY=off", "MPO_VULNDB_VERSION=", "MPO_VULNDB_MAX_AGE_DAYS="+tc.maxAge)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(out.String(), tc.says) {
				t.Errorf("exit %d, want %d, and output containing %q:\n%s", code, tc.code, tc.says, out.String())
			}
			if tc.code != 0 && strings.Contains(out.String(), "fake govulncheck") {
				t.Errorf("scanned although the run failed:\n%s", out.String())
			}
		})
	}
}

func stamp(age time.Duration) string { return time.Now().UTC().Add(-age).Format(time.RFC3339) }

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartRepoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func goEnv(t *testing.T, key string) []byte {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
