package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// want is what a release image must be.
type want struct {
	release
	platforms []string
	runtime   runtimeStage
}

// elfMachines are the ELF machines of the architectures we build for.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// check reads the OCI image layout at dir and returns what is wrong with it; an error means it
// could not be read at all.
func check(dir string, w want) ([]string, error) {
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	rm, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(rm.Manifests) != 1 {
		return []string{fmt.Sprintf("index.json lists %d entries, want the one image index", len(rm.Manifests))}, nil
	}
	if got := rm.Manifests[0].Annotations[labelPrefix+"ref.name"]; got != w.version {
		return []string{fmt.Sprintf("index.json names the image %q, want %q", got, w.version)}, nil
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	// The layout's structure (media types, digests, sizes, diff IDs, platforms) is go-containerregistry's to judge.
	if err := validate.Index(idx); err != nil {
		return []string{"not a valid image index: " + err.Error()}, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var problems []string
	var found []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			problems = append(problems, fmt.Sprintf("manifest %s has no platform", d.Digest))
			continue
		}
		p := d.Platform.String()
		found = append(found, p)
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		ps, err := checkImage(img, d.Platform, w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, msg := range ps {
			problems = append(problems, p+": "+msg)
		}
	}
	slices.Sort(found)
	wantPlatforms := slices.Sorted(slices.Values(w.platforms))
	if !slices.Equal(found, wantPlatforms) {
		problems = append(problems, fmt.Sprintf("platforms %v, want %v", found, wantPlatforms))
	}
	return problems, nil
}

func checkImage(img v1.Image, p *v1.Platform, w want) ([]string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	c := cf.Config
	if c.User != w.runtime.user {
		bad("user %q, the Dockerfile's USER is %q", c.User, w.runtime.user)
	}
	uid, gid, err := parseUser(c.User)
	if err != nil || uid == 0 || gid == 0 {
		bad("user %q is not a numeric non-root uid:gid", c.User)
	}
	if !slices.Equal(c.Entrypoint, w.runtime.entrypoint) {
		bad("entrypoint %q, the Dockerfile's ENTRYPOINT is %q", c.Entrypoint, w.runtime.entrypoint)
	}
	if keys := slices.Sorted(maps.Keys(c.Labels)); !slices.Equal(keys, slices.Sorted(slices.Values(w.runtime.labels))) {
		bad("labels %v, the Dockerfile's LABELs are %v", keys, w.runtime.labels)
	}
	for k, v := range w.labels() {
		if c.Labels[k] != v {
			bad("label %s=%q, want %q", k, c.Labels[k], v)
		}
	}

	files, err := readFiles(img, map[string]bool{"etc/passwd": true, "etc/group": true, caBundle: true,
		strings.TrimPrefix(c.Entrypoint[0], "/"): true})
	if err != nil {
		return nil, err
	}
	if !hasID(files["etc/passwd"], 2, uid) {
		bad("/etc/passwd has no user with uid %d", uid)
	}
	if !hasID(files["etc/group"], 2, gid) {
		bad("/etc/group has no group with gid %d", gid)
	}
	if ca := files[caBundle]; ca == nil || !x509.NewCertPool().AppendCertsFromPEM(ca.data) {
		bad("no CA certificates in /%s", caBundle)
	}
	bin := files[strings.TrimPrefix(c.Entrypoint[0], "/")]
	if bin == nil {
		bad("the entrypoint %s is not in the image", c.Entrypoint[0])
		return problems, nil
	}
	if bin.mode&0o005 != 0o005 {
		bad("the entrypoint's mode %o does not let another user run it", bin.mode)
	}
	for _, msg := range checkBinary(bin.data, p, w.release) {
		bad("%s: %s", c.Entrypoint[0], msg)
	}
	return problems, nil
}

// checkBinary: a static ELF executable for the platform, stamped with the release.
func checkBinary(data []byte, p *v1.Platform, r release) []string {
	var problems []string
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return []string{"not an ELF executable: " + err.Error()}
	}
	if m, ok := elfMachines[p.Architecture]; !ok || f.Machine != m {
		problems = append(problems, fmt.Sprintf("built for %s, not %s", f.Machine, p.Architecture))
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			problems = append(problems, "dynamically linked: it names an interpreter (PT_INTERP), which the image does not hold")
		}
	}
	bi, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		return append(problems, "no Go build information: "+err.Error())
	}
	for _, s := range bi.Settings {
		if s.Key == "CGO_ENABLED" && s.Value != "0" {
			problems = append(problems, "not built with CGO_ENABLED=0")
		}
	}
	// -trimpath keeps -ldflags out of the build information, so the stamp is looked for where it
	// lands: the strings in the binary, and what --version prints where the binary can run.
	for _, v := range []string{r.version, r.revision} {
		if !bytes.Contains(data, []byte(v)) {
			problems = append(problems, fmt.Sprintf("not stamped: %q is nowhere in it", v))
		}
	}
	if p.OS == runtime.GOOS && p.Architecture == runtime.GOARCH && len(problems) == 0 {
		out, err := runVersion(data)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--version: %v", err))
		} else if !strings.Contains(out, " "+r.version+" ") || !strings.Contains(out, " "+r.revision+",") {
			problems = append(problems, fmt.Sprintf("--version prints %q, not version %s and commit %s", out, r.version, r.revision))
		}
	}
	return problems
}

// runVersion runs the binary with --version and returns what it prints.
func runVersion(data []byte) (string, error) {
	dir, err := os.MkdirTemp("", "image-check-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "manager")
	if err := os.WriteFile(path, data, 0o700); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

type file struct {
	mode int64
	data []byte
}

// readFiles returns the named regular files of the image's flattened file system.
func readFiles(img v1.Image, names map[string]bool) (map[string]*file, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*file{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(h.Name, "/")
		if h.Typeflag != tar.TypeReg || !names[name] {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[name] = &file{mode: h.Mode, data: data}
	}
}

func parseUser(u string) (uid, gid int, err error) {
	us, gs, ok := strings.Cut(u, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q has no group", u)
	}
	if uid, err = strconv.Atoi(us); err != nil {
		return 0, 0, err
	}
	gid, err = strconv.Atoi(gs)
	return uid, gid, err
}

// hasID reports whether a passwd- or group-format file has a line whose field (0-based) is id.
func hasID(f *file, field, id int) bool {
	if f == nil {
		return false
	}
	for _, line := range strings.Split(string(f.data), "\n") {
		if fields := strings.Split(line, ":"); len(fields) > field && fields[field] == strconv.Itoa(id) {
			return true
		}
	}
	return false
}
