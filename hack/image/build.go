package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The runtime image's fixed contents: those of the Dockerfile's base (distroless static,
// nonroot) that the manager relies on, at the paths and with the owners that base uses.
const (
	nonrootID   = 65532
	entrypoint  = "/manager"
	caBundle    = "etc/ssl/certs/ca-certificates.crt"
	passwd      = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group       = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
	nsswitch    = "hosts: files dns\n"
	labelPrefix = "org.opencontainers.image."
)

var (
	user = fmt.Sprintf("%d:%d", nonrootID, nonrootID)
	env  = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/" + caBundle}
)

type platformBinary struct{ platform, path string }

type buildOptions struct {
	release
	out, archive   string
	caCertificates string
	created        time.Time
	platforms      []platformBinary
}

func (r release) labels() map[string]string {
	return map[string]string{
		labelPrefix + "version":  r.version,
		labelPrefix + "revision": r.revision,
		labelPrefix + "source":   r.source,
	}
}

// build writes the image index to o.out as an OCI image layout, and to o.archive as a tar of
// that layout when set. The same inputs give the same bytes.
func build(o buildOptions) error {
	ca, err := os.ReadFile(o.caCertificates)
	if err != nil {
		return err
	}
	base, err := layer(o.created, []entry{
		{name: "etc/", mode: 0o755}, {name: "etc/ssl/", mode: 0o755}, {name: "etc/ssl/certs/", mode: 0o755},
		{name: caBundle, mode: 0o644, data: ca},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte(nsswitch)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "home/", mode: 0o755}, {name: "home/nonroot/", mode: 0o700, owner: nonrootID},
		{name: "tmp/", mode: 0o1777},
	})
	if err != nil {
		return fmt.Errorf("base layer: %w", err)
	}
	slices.SortFunc(o.platforms, func(a, b platformBinary) int { return strings.Compare(a.platform, b.platform) })
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pb := range o.platforms {
		img, p, err := platformImage(o, base, pb)
		if err != nil {
			return fmt.Errorf("%s: %w", pb.platform, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	idx = mutate.Annotations(idx, o.labels()).(v1.ImageIndex)

	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	lp, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		labelPrefix + "ref.name": o.version,
	})); err != nil {
		return fmt.Errorf("writing %s: %w", o.out, err)
	}
	if o.archive != "" {
		return archive(o.out, o.archive, o.created)
	}
	return nil
}

func platformImage(o buildOptions, base v1.Layer, pb platformBinary) (v1.Image, *v1.Platform, error) {
	p, err := v1.ParsePlatform(pb.platform)
	if err != nil {
		return nil, nil, err
	}
	bin, err := os.ReadFile(pb.path)
	if err != nil {
		return nil, nil, err
	}
	app, err := layer(o.created, []entry{{name: strings.TrimPrefix(entrypoint, "/"), mode: 0o755, data: bin}})
	if err != nil {
		return nil, nil, err
	}
	created := v1.Time{Time: o.created}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
		Architecture: p.Architecture, OS: p.OS, Variant: p.Variant, Created: created,
		Config: v1.Config{User: user, Entrypoint: []string{entrypoint}, Env: env, WorkingDir: "/home/nonroot",
			Labels: o.labels()},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, nil, err
	}
	img, err = mutate.Append(mutate.ConfigMediaType(img, types.OCIConfigJSON),
		mutate.Addendum{Layer: base, History: v1.History{Created: created,
			CreatedBy: "base: nonroot user and group 65532, CA certificates, nsswitch.conf, /home/nonroot, /tmp"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "COPY manager " + entrypoint}})
	return img, p, err
}

type entry struct {
	name  string // relative; a trailing slash makes a folder
	mode  int64
	owner int
	data  []byte
}

// layer is a gzipped tar layer of entries, in the given order, with fixed times and owners.
func layer(mtime time.Time, entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.owner, Gid: e.owner, ModTime: mtime,
			Typeflag: tar.TypeReg, Size: int64(len(e.data)), Format: tar.FormatPAX}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// archive writes the layout folder as one tar file (what `skopeo copy oci-archive:` and
// `docker load` read), files in name order with fixed times.
func archive(dir, file string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && path != dir {
			names = append(names, path)
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, path := range names {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: mtime, Typeflag: tar.TypeReg,
			Size: fi.Size(), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = h.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.IsDir() {
			if err := copyFile(tw, path); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
