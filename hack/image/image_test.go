package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var testRelease = release{version: "1.2.3", revision: "0123abcd", source: "https://example.com/marketplace-operator"}

// goBuild compiles a stand-in for the manager for linux/arch: the same module and version
// package, stamped as the Makefile stamps the manager, printing what --version prints.
func goBuild(t *testing.T, arch string, cgo bool) string {
	return goBuildStamped(t, arch, cgo, testRelease)
}

func goBuildStamped(t *testing.T, arch string, cgo bool, r release) string {
	t.Helper()
	dir := t.TempDir()
	mod := versionPkg[:strings.Index(versionPkg, "/internal/")]
	cgoEnabled, importC := "0", ""
	if cgo {
		cgoEnabled, importC = "1", "import \"C\"\n\n"
	}
	files := map[string]string{
		"go.mod":                      "module " + mod + "\n\ngo 1.26\n",
		"internal/version/version.go": "package version\n\nvar Version, Commit = \"devel\", \"unknown\"\n",
		"main.go": "package main\n\n" + importC + `import (
	"fmt"
	"os"
	"runtime"

	"` + versionPkg + `"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Printf("marketplace-operator %s (commit %s, %s)\n", version.Version, version.Commit, runtime.Version())
	}
}
`,
	}
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", "manager", "-ldflags",
		"-s -w -X "+versionPkg+".Version="+r.version+" -X "+versionPkg+".Commit="+r.revision, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED="+cgoEnabled)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "manager")
}

func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(0, 0).AddDate(100, 0, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func repoDockerfile(t *testing.T) runtimeStage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseDockerfile(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func buildImage(t *testing.T, ca string, binaries map[string]string) (dir, archivePath string) {
	t.Helper()
	o := buildOptions{release: testRelease, out: filepath.Join(t.TempDir(), "oci"),
		archive: filepath.Join(t.TempDir(), "image.tar"), caCertificates: ca, created: time.Unix(1700000000, 0)}
	for p, path := range binaries {
		o.platforms = append(o.platforms, platformBinary{platform: p, path: path})
	}
	if err := build(o); err != nil {
		t.Fatal(err)
	}
	return o.out, o.archive
}

// The image build makes is the one check accepts for the repository's Dockerfile, and the same
// inputs make the same bytes.
func TestBuildAndCheck(t *testing.T) {
	ca := testCA(t)
	bins := map[string]string{"linux/amd64": goBuild(t, "amd64", false), "linux/arm64": goBuild(t, "arm64", false)}
	w := want{release: testRelease, platforms: []string{"linux/arm64", "linux/amd64"}, runtime: repoDockerfile(t)}
	dir, archive1 := buildImage(t, ca, bins)
	problems, err := check(dir, w)
	if err != nil || len(problems) > 0 {
		t.Fatalf("check: %v\n%s", err, strings.Join(problems, "\n"))
	}

	_, archive2 := buildImage(t, ca, bins)
	a, err := os.ReadFile(archive1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(archive2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same inputs differ")
	}
}

func TestCheckFindsProblems(t *testing.T) {
	ca := testCA(t)
	amd64, arm64 := goBuild(t, "amd64", false), goBuild(t, "arm64", false)
	good := want{release: testRelease, platforms: []string{"linux/amd64", "linux/arm64"}, runtime: repoDockerfile(t)}
	dir, _ := buildImage(t, ca, map[string]string{"linux/amd64": amd64, "linux/arm64": arm64})

	cases := map[string]struct {
		dir  string
		want func(w want) want
		find []string
	}{
		"another release": {dir, func(w want) want { w.version, w.revision = "9.9.9", "fedcba"; return w },
			[]string{`index.json names the image "1.2.3", want "9.9.9"`}},
		"a platform missing": {dir, func(w want) want { w.platforms = append(w.platforms, "linux/s390x"); return w },
			[]string{"platforms [linux/amd64 linux/arm64], want [linux/amd64 linux/arm64 linux/s390x]"}},
		"another user in the Dockerfile": {dir, func(w want) want { w.runtime.user = "0:0"; return w },
			[]string{`linux/amd64: user "65532:65532", the Dockerfile's USER is "0:0"`}},
		"another label in the Dockerfile": {dir, func(w want) want {
			w.runtime.labels = append(w.runtime.labels, "org.opencontainers.image.licenses")
			return w
		}, []string{"linux/arm64: labels [org.opencontainers.image.revision org.opencontainers.image.source org.opencontainers.image.version]"}},
		"binaries of another release": {buildDir(t, ca, map[string]string{
			"linux/amd64": goBuildStamped(t, "amd64", false, release{version: "0.0.1", revision: "ffff0000"}), "linux/arm64": arm64}), nil,
			[]string{`linux/amd64: /manager: not stamped: "1.2.3" is nowhere in it`, `linux/amd64: /manager: not stamped: "0123abcd" is nowhere in it`}},
		"binaries swapped": {buildDir(t, ca, map[string]string{"linux/amd64": arm64, "linux/arm64": amd64}), nil,
			[]string{"linux/amd64: /manager: built for EM_AARCH64, not amd64", "linux/arm64: /manager: built for EM_X86_64, not arm64"}},
	}
	if arch := runtime.GOARCH; elfMachines[arch] != 0 && runtime.GOOS == "linux" {
		cases["dynamically linked"] = struct {
			dir  string
			want func(w want) want
			find []string
		}{buildDir(t, ca, map[string]string{"linux/" + arch: goBuild(t, arch, true)}),
			func(w want) want { w.platforms = []string{"linux/" + arch}; return w },
			[]string{"PT_INTERP", "not built with CGO_ENABLED=0"}}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := good
			if tc.want != nil {
				w = tc.want(w)
			}
			problems, err := check(tc.dir, w)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(problems, "\n")
			for _, f := range tc.find {
				if !strings.Contains(got, f) {
					t.Errorf("want a problem containing %q, got:\n%s", f, got)
				}
			}
		})
	}
}

func buildDir(t *testing.T, ca string, binaries map[string]string) string {
	dir, _ := buildImage(t, ca, binaries)
	return dir
}

func TestParseDockerfile(t *testing.T) {
	const df = `ARG BASE
FROM golang AS build
USER 0
ENTRYPOINT ["/bin/sh"]

FROM ${BASE}
# a comment
LABEL a.b="${X}" \
      c=d
LABEL e="f g"
COPY --from=build /out/m /m
USER 65532:65532
ENTRYPOINT ["/m", "--flag"]
`
	st, err := parseDockerfile(df)
	if err != nil {
		t.Fatal(err)
	}
	if st.user != "65532:65532" || strings.Join(st.entrypoint, " ") != "/m --flag" || strings.Join(st.labels, ",") != "a.b,c,e" {
		t.Errorf("%+v", st)
	}
	for name, bad := range map[string]string{
		"no FROM":          "USER 1\n",
		"shell entrypoint": "FROM x\nUSER 1\nENTRYPOINT /m\n",
		"two users":        "FROM x\nUSER 1\nUSER 2\nENTRYPOINT [\"/m\"]\n",
		"no user":          "FROM x\nENTRYPOINT [\"/m\"]\n",
	} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
