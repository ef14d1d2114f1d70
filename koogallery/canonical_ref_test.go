package koogallery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceCanonical is the canonical form computed the obvious way, with encoding/json's
// decoder, token by token: the streaming implementation must agree with it on every body both
// accept. It is slow and allocates in proportion to the body, which is why the verifier does not
// use it.
func referenceCanonical(body []byte) ([]byte, error) {
	ms, err := objectMembers(body)
	if err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].key < ms[j].key })
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for _, m := range ms {
		if string(m.raw) == "null" {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		refString(&buf, m.key)
		buf.WriteByte(':')
		dec := json.NewDecoder(bytes.NewReader(m.raw))
		dec.UseNumber()
		if err := refValue(&buf, dec, 0); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func refValue(buf *bytes.Buffer, dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("reading JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		closing := byte(']')
		if t == '{' {
			closing = '}'
		}
		buf.WriteByte(byte(t)) //nolint:gosec // a json.Delim is ASCII
		for n := 0; dec.More(); n++ {
			if n > 0 {
				buf.WriteByte(',')
			}
			if t == '{' {
				tok, err := dec.Token()
				if err != nil {
					return fmt.Errorf("reading JSON: %w", err)
				}
				key, _ := tok.(string)
				refString(buf, key)
				buf.WriteByte(':')
			}
			if err := refValue(buf, dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("reading JSON: %w", err)
		}
		buf.WriteByte(closing)
	case string:
		refString(buf, t)
	case json.Number:
		buf.WriteString(t.String())
	case bool:
		fmt.Fprint(buf, t)
	case nil:
		buf.WriteString("null")
	}
	return nil
}

func refString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			buf.WriteByte('\\')
			buf.WriteRune(r)
		case r < 0x20:
			short := map[rune]string{'\b': `\b`, '\t': `\t`, '\n': `\n`, '\f': `\f`, '\r': `\r`}[r]
			if short == "" {
				short = fmt.Sprintf(`\u%04X`, r)
			}
			buf.WriteString(short)
		default:
			buf.WriteRune(r)
		}
	}
	buf.WriteByte('"')
}

// canonicalSeeds exercise the corners of the string and number grammar and the bounds.
var canonicalSeeds = []string{
	`{"b":"\u4e2d","a":"x\/y"}`,
	`{"a":"tab\tnl\n\u0001\u001f\u007f"}`,
	`{"a":[1, 2.50, -0, 1E+5, 1e-400, true, false, null, {"z":1,"y":2}]}`,
	`{"a":"\ud83d\ude00 \ud83d \ude00 \ud83d\u0041 \udc00\ud800"}`,
	"{\"a\":\"\xff\xfe \xed\xa0\x80 \xc0\x80 é\"}",
	`{"\u0022q":"\\\"", "\\":"\/"}`,
	`{"k\u0000":null,"k":1}`,
	`  {"a" : { } , "b" : [ ] }  `,
	`{"a":1,"a":2}`,
	`{"a":1,"\u0061":2}`,
	`{}`,
	`{"a":01}`,
	`{"a":1.}`,
	`{"a":.5}`,
	`{"a":+1}`,
	`{"a":"\x"}`,
	`{"a":"\u12"}`,
	"{\"a\":\"\x01\"}",
	`{"a":tru}`,
	`{"a":[1,]}`,
	`{"a":{"b":1,}}`,
	`{"a":1}x`,
	`{"a":1} {}`,
	`[]`,
	`"x"`,
	``,
	`{"a":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`,
	`{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, maxDepth) + `1` + strings.Repeat("}", maxDepth) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, maxDepth+1) + `1` + strings.Repeat("}", maxDepth+1) + `}`,
}

func TestCanonicalMatchesReference(t *testing.T) {
	for _, s := range append(canonicalSeeds, fuzzSeeds...) {
		checkCanonical(t, []byte(s))
	}
}

// FuzzCanonicalReference: the streaming canonical form and the reference agree, byte for byte,
// on every body; the streaming one may refuse only bodies over its bounds.
func FuzzCanonicalReference(f *testing.F) {
	for _, s := range append(canonicalSeeds, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkCanonical(t, body) })
}

func checkCanonical(t *testing.T, body []byte) {
	t.Helper()
	want, werr := referenceCanonical(body)
	got, err := Canonical(body)
	switch {
	case errors.Is(err, errCanonicalBounds):
	case (err == nil) != (werr == nil):
		t.Errorf("Canonical(%q): error %v, reference error %v", body, err, werr)
	case err == nil && !bytes.Equal(got, want):
		t.Errorf("Canonical(%q)\n got %q\nwant %q", body, got, want)
	case err == nil && !utf8.Valid(got):
		t.Errorf("Canonical(%q) is not UTF-8: %q", body, got)
	}
}

func TestCanonicalBounds(t *testing.T) {
	many := repeatInside(1<<20, `{`, `}`, ",", func(i int) string { return fmt.Sprintf(`"%x":0`, i) })
	if _, err := Canonical(many); !errors.Is(err, errCanonicalBounds) {
		t.Errorf("%d top-level members: %v", bytes.Count(many, []byte(":")), err)
	}
	longKey := []byte(`{"` + strings.Repeat("k", maxKeyBytes) + `":1}`)
	if _, err := Canonical(longKey); !errors.Is(err, errCanonicalBounds) {
		t.Errorf("a %d-byte name: %v", maxKeyBytes, err)
	}
	within := repeatInside(1<<20, `{`, `}`, ",", func(i int) string {
		if i >= maxMembers {
			return strings.Repeat(" ", 1<<20)
		}
		return fmt.Sprintf(`"%x":0`, i)
	})
	if _, err := Canonical(within); err != nil {
		t.Errorf("%d members: %v", maxMembers, err)
	}
}
