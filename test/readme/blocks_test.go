package readme

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// block is one shell block of the README and what its marker says to do with it.
type block struct {
	line       int // of the opening fence, 1-based
	lines      []string
	skip       string // why the block is not run; empty for a block that is
	background []background
	expect     []string
}

// background is a command that keeps running: its line starts with prefix, and it is up once
// its output holds until.
type background struct{ prefix, until string }

var (
	markerRE     = regexp.MustCompile(`^<!-- readme-test: (.*) -->$`)
	quoted       = `("(?:[^"\\]|\\.)*")`
	backgroundRE = regexp.MustCompile(`^background ` + quoted + ` until ` + quoted + `$`)
	expectRE     = regexp.MustCompile(`^expect ` + quoted + `$`)
)

// parse returns the shell blocks of a README, each with what its marker says. A block without
// a marker, or with one it cannot read, is an error: a new block is tested or says why not.
func parse(readme string) ([]block, error) {
	var blocks []block
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("README:%d: the block is never closed", i+1)
		}
		if lang == "sh" || lang == "bash" || lang == "shell" {
			b := block{line: i + 1, lines: lines[i+1 : end]}
			marker := ""
			if i > 0 {
				if m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[i-1])); m != nil {
					marker = m[1]
				}
			}
			if err := b.mark(marker); err != nil {
				return nil, fmt.Errorf("README:%d: %w", i+1, err)
			}
			blocks = append(blocks, b)
		}
		i = end
	}
	return blocks, nil
}

// mark reads the marker into b.
func (b *block) mark(marker string) error {
	if reason, ok := strings.CutPrefix(marker, "skip:"); ok {
		if b.skip = strings.TrimSpace(reason); b.skip == "" {
			return fmt.Errorf("the skip marker gives no reason")
		}
		return nil
	}
	options := strings.Split(marker, ";")
	if strings.TrimSpace(options[0]) != "run" {
		return fmt.Errorf(`a shell block needs a marker on the line before it: "<!-- readme-test: run -->" or "<!-- readme-test: skip: why -->" (found %q)`, marker)
	}
	for _, o := range options[1:] {
		o = strings.TrimSpace(o)
		if m := backgroundRE.FindStringSubmatch(o); m != nil {
			prefix, err1 := strconv.Unquote(m[1])
			until, err2 := strconv.Unquote(m[2])
			if err1 != nil || err2 != nil {
				return fmt.Errorf("marker option %q: bad quoting", o)
			}
			b.background = append(b.background, background{prefix: prefix, until: until})
		} else if m := expectRE.FindStringSubmatch(o); m != nil {
			text, err := strconv.Unquote(m[1])
			if err != nil {
				return fmt.Errorf("marker option %q: bad quoting", o)
			}
			b.expect = append(b.expect, text)
		} else {
			return fmt.Errorf("unknown marker option %q", o)
		}
	}
	for _, bg := range b.background {
		found := false
		for _, s := range b.steps() {
			found = found || s.background == bg
		}
		if !found {
			return fmt.Errorf("no line of the block starts with %q", bg.prefix)
		}
	}
	return nil
}

// step is a stretch of a block run in one go: shell lines run to their end, or one command
// left in the background.
type step struct {
	script     string
	background background
}

// steps splits the block at its background lines, with continued lines joined.
func (b *block) steps() []step {
	var steps []step
	var script strings.Builder
	flush := func() {
		if strings.TrimSpace(script.String()) != "" {
			steps = append(steps, step{script: script.String()})
		}
		script.Reset()
	}
	for i := 0; i < len(b.lines); i++ {
		line := b.lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(b.lines) {
			i++
			line += "\n" + b.lines[i]
		}
		bg, isBackground := b.backgroundOf(line)
		if !isBackground {
			script.WriteString(line + "\n")
			continue
		}
		flush()
		steps = append(steps, step{script: line, background: bg})
	}
	flush()
	return steps
}

func (b *block) backgroundOf(line string) (background, bool) {
	for _, bg := range b.background {
		if strings.HasPrefix(line, bg.prefix) {
			return bg, true
		}
	}
	return background{}, false
}

// TestParse: markers are read as documented, and a block without one is refused.
func TestParse(t *testing.T) {
	blocks, err := parse("intro\n<!-- readme-test: run; background \"make dev\" until \"dev: ready\"; expect \"a \\\"b\\\"\" -->\n" +
		"```sh\nmake dev   # waits\n. .dev/env\nkoosim x \\\n  --y\n```\n\n" +
		"<!-- readme-test: skip: needs keys -->\n```sh\nkubectl create secret\n```\n```yaml\nkind: X\n```\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 {
		t.Fatalf("parsed %d shell blocks, want 2", len(blocks))
	}
	run := blocks[0]
	if run.line != 3 || run.skip != "" || len(run.expect) != 1 || run.expect[0] != `a "b"` {
		t.Errorf("run block: %+v", run)
	}
	steps := run.steps()
	if len(steps) != 2 || steps[0].background.until != "dev: ready" || steps[1].script != ". .dev/env\nkoosim x \\\n  --y\n" {
		t.Errorf("steps: %+v", steps)
	}
	if blocks[1].skip != "needs keys" {
		t.Errorf("skip block: %+v", blocks[1])
	}

	for _, bad := range []string{
		"```sh\nls\n```\n",
		"<!-- readme-test: skip: -->\n```sh\nls\n```\n",
		"<!-- readme-test: run; sometimes -->\n```sh\nls\n```\n",
		"<!-- readme-test: run; background \"make dev\" until \"x\" -->\n```sh\nls\n```\n",
		"<!-- readme-test: run -->\n```sh\nls\n",
	} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse accepted %q", bad)
		}
	}
}
