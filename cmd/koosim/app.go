package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// app holds the process environment so that every command runs in tests without a process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// onListen is called with the bound address when serve is ready (tests use it).
	onListen func(addr string)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now, onListen: func(string) {}}
}

type command struct {
	summary string
	run     func(a *app, ctx context.Context, args []string) error
}

var commands = map[string]command{
	"sign":      {"print the URL signature parameters of a basic-interface body", (*app).sign},
	"kit-sign":  {"print the x-sign, x-timestamp and x-nonce headers of a kit body", (*app).kitSign},
	"body-sign": {"print the Body-Sign header value of a reply body", (*app).bodySign},
	"encrypt":   {"encrypt an appInfo credential (AES, iv + base64)", (*app).encrypt},
	"decrypt":   {"decrypt an appInfo credential", (*app).decrypt},
	"send":      {"send one activity or kit sync to a production URL", (*app).send},
	"lifecycle": {"run create, poll, renew, freeze, unfreeze, upgrade, release (pay-per-use: no renew or upgrade) and print a table", (*app).lifecycle},
	"serve":     {"serve the Query Order and usage push open APIs", (*app).serve},
	"usage":     {"print the usage a running koosim serve received, per instance", (*app).usageCmd},
	"load":      {"send bounded signed load to a loopback production URL", (*app).load},
}

const keysHelp = `Keys: every key flag --X has a --X-file twin that reads the key from a file (one trailing
newline is dropped) and an environment variable, so that keys need not appear on the command
line. Precedence: flag, then file, then environment.`

// errUsage marks a command-line mistake: usage is printed and the exit code is 2.
var errUsage = errors.New("usage")

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		a.usage(a.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(a.stderr, "koosim: unknown command %q\n", args[0])
		a.usage(a.stderr)
		return 2
	}
	err := cmd.run(a, ctx, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(a.stderr, "koosim %s: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(a.stderr, "koosim %s: %v\n", args[0], err)
	return 1
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: koosim <command> [flags]  (koosim <command> --help for details)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\n"+keysHelp)
}

// flagSet returns a flag set whose --help prints synopsis, the flags and the keys note to stdout.
func (a *app) flagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fs.SetOutput(a.stdout)
		fmt.Fprintf(a.stdout, "Usage: koosim %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprintln(a.stdout, "\n"+keysHelp)
		fs.SetOutput(a.stderr)
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

// secret is a key given as a flag, a file or an environment variable.
type secret struct {
	name, env   string
	value, file string
}

func (a *app) secretFlag(fs *flag.FlagSet, name, env, help string) *secret {
	s := &secret{name: name, env: env}
	fs.StringVar(&s.value, name, "", help+" (or --"+name+"-file, or $"+env+")")
	fs.StringVar(&s.file, name+"-file", "", "file holding the value of --"+name)
	return s
}

func (a *app) resolve(s *secret) (string, error) {
	switch {
	case s.value != "":
		return s.value, nil
	case s.file != "":
		b, err := os.ReadFile(s.file) //nolint:gosec // the user names the key file to read: that is the flag's purpose
		if err != nil {
			return "", fmt.Errorf("reading --%s-file: %w", s.name, err)
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	case a.getenv(s.env) != "":
		return a.getenv(s.env), nil
	}
	return "", fmt.Errorf("%w: --%s, --%s-file or $%s is required", errUsage, s.name, s.name, s.env)
}

// readBody reads a body file exactly as it is sent; "-" is stdin.
func (a *app) readBody(path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --body-file is required", errUsage)
	}
	if path == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path) //nolint:gosec // the user names the body file to read: that is the flag's purpose
	if err != nil {
		return nil, fmt.Errorf("reading body file: %w", err)
	}
	return b, nil
}

// durations parses a comma-separated list such as "1s,2s,5s".
func durations(s string) ([]time.Duration, error) {
	if s == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, p := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: bad duration %q in schedule", errUsage, p)
		}
		out = append(out, d)
	}
	return out, nil
}
