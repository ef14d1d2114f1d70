package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// versionPkg is the package whose variables -ldflags -X stamps with the release.
const versionPkg = "github.com/marketplace-operator/marketplace-operator/internal/version"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: image build|check [flags] (-h for the flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = runBuild(os.Args[2:])
	case "check":
		err = runCheck(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: build or check", os.Args[1])
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// release is what identifies a build: the same values stamp the binary and label the image.
type release struct {
	version, revision, source string
}

func (r *release) bind(fs *flag.FlagSet) {
	fs.StringVar(&r.version, "version", "", "the release version (the repository's VERSION file)")
	fs.StringVar(&r.revision, "revision", "", "the source commit")
	fs.StringVar(&r.source, "source", "", "URL of the source repository")
}

func (r *release) validate() error {
	if r.version == "" || r.revision == "" || r.source == "" {
		return errors.New("--version, --revision and --source are required")
	}
	return nil
}

func runBuild(args []string) error {
	var (
		o        buildOptions
		binaries = map[string]string{}
		epoch    string
	)
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	o.release.bind(fs)
	fs.StringVar(&o.out, "out", "", "the OCI image layout folder to write (replaced)")
	fs.StringVar(&o.archive, "archive", "", "also write the layout as this tar file (optional)")
	fs.StringVar(&o.caCertificates, "ca-certificates", "", "PEM bundle installed as the image's CA certificates")
	fs.StringVar(&epoch, "epoch", "0", "Unix time of every file and of the image (SOURCE_DATE_EPOCH: the commit's time)")
	fs.Func("binary", "PLATFORM=PATH: the manager built for PLATFORM (os/arch); repeat for each platform", func(v string) error {
		p, path, ok := strings.Cut(v, "=")
		if !ok || p == "" || path == "" {
			return fmt.Errorf("%q is not PLATFORM=PATH", v)
		}
		binaries[p] = path
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.release.validate(); err != nil {
		return err
	}
	if o.out == "" || o.caCertificates == "" || len(binaries) == 0 {
		return errors.New("--out, --ca-certificates and at least one --binary are required")
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("--epoch: %w", err)
	}
	o.created = time.Unix(secs, 0).UTC()
	for p, path := range binaries {
		o.platforms = append(o.platforms, platformBinary{platform: p, path: path})
	}
	return build(o)
}

func runCheck(args []string) error {
	var w want
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	w.release.bind(fs)
	layout := fs.String("layout", "", "the OCI image layout folder to check")
	dockerfile := fs.String("dockerfile", "", "the Dockerfile the image must agree with")
	fs.Func("platform", "os/arch the index must hold; repeat for each", func(v string) error {
		w.platforms = append(w.platforms, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := w.release.validate(); err != nil {
		return err
	}
	if *layout == "" || *dockerfile == "" || len(w.platforms) == 0 {
		return errors.New("--layout, --dockerfile and at least one --platform are required")
	}
	df, err := os.ReadFile(*dockerfile)
	if err != nil {
		return err
	}
	if w.runtime, err = parseDockerfile(string(df)); err != nil {
		return fmt.Errorf("%s: %w", *dockerfile, err)
	}
	problems, err := check(*layout, w)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s is not the image the release needs:\n  %s", *layout, strings.Join(problems, "\n  "))
	}
	fmt.Printf("image: %s holds marketplace-operator %s for %s: static, user %s, entrypoint %v, labelled\n",
		*layout, w.version, strings.Join(w.platforms, ", "), w.runtime.user, w.runtime.entrypoint)
	return nil
}
