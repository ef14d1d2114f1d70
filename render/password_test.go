package render_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/marketplace-operator/marketplace-operator/render"
)

const (
	upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower   = "abcdefghijklmnopqrstuvwxyz"
	digits  = "0123456789"
	symbols = "!*+-.=_~"
)

// seeded is a fixed, reproducible byte stream.
func seeded(seed byte) io.Reader {
	var key [32]byte
	key[0] = seed
	return mathrand.NewChaCha8(key)
}

// repeat is an endless stream of one byte.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func checkPassword(t *testing.T, p string) {
	t.Helper()
	if len(p) != render.PasswordLength {
		t.Errorf("%d characters, want %d", len(p), render.PasswordLength)
	}
	for _, class := range []string{upper, lower, digits, symbols} {
		if !strings.ContainsAny(p, class) {
			t.Errorf("no character of %q", class)
		}
	}
	for _, c := range p {
		if !strings.ContainsRune(upper+lower+digits+symbols, c) {
			t.Errorf("unexpected character %q", c)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	cases := []struct {
		name    string
		reader  func() io.Reader
		wantErr error // nil: success
	}{
		{"seed 1", func() io.Reader { return seeded(1) }, nil},
		{"seed 2", func() io.Reader { return seeded(2) }, nil},
		{"all zero bytes still cover every class", func() io.Reader { return repeat(0) }, nil},
		{"crypto/rand", func() io.Reader { return rand.Reader }, nil},
		{"exhausted reader", func() io.Reader { return bytes.NewReader(make([]byte, 10)) }, io.EOF},
		{"empty reader", func() io.Reader { return strings.NewReader("") }, io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := render.GeneratePassword(tc.reader())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || p != "" {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkPassword(t, p)
		})
	}
	t.Run("a reader that is always rejected fails instead of looping", func(t *testing.T) {
		// 0xff is in the rejected range for the 26 upper-case letters, the first class drawn.
		if _, err := render.GeneratePassword(repeat(0xff)); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("deterministic for a fixed reader", func(t *testing.T) {
		a, errA := render.GeneratePassword(seeded(7))
		b, errB := render.GeneratePassword(seeded(7))
		c, errC := render.GeneratePassword(seeded(8))
		if err := errors.Join(errA, errB, errC); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("same stream gave %q and %q", a, b)
		}
		if a == c {
			t.Errorf("different streams gave the same password %q", a)
		}
	})
	t.Run("guaranteed classes are shuffled, not always first", func(t *testing.T) {
		firstIsUpper := 0
		const n = 200
		r := seeded(9)
		for range n {
			p, err := render.GeneratePassword(r)
			if err != nil {
				t.Fatal(err)
			}
			checkPassword(t, p)
			if strings.ContainsRune(upper, rune(p[0])) {
				firstIsUpper++
			}
		}
		// Uniform would put an upper-case letter first about 38% of the time.
		if firstIsUpper > n*3/4 {
			t.Errorf("first character upper-case in %d of %d passwords", firstIsUpper, n)
		}
	})
}
