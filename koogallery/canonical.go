package koogallery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// maxDepth bounds the nesting Canonical accepts; KooGallery bodies are at most two levels deep and
// the bound keeps hostile input from exhausting the stack.
const maxDepth = 32

type member struct {
	key string
	raw json.RawMessage
}

var errNotObject = errors.New("body is not a single JSON object")

// objectMembers splits a JSON object into its members in received order. It rejects anything but
// exactly one object, trailing data and duplicate keys: a duplicate key would let the signed text
// and the parsed request disagree.
func objectMembers(body []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errNotObject
	}
	var ms []member
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errNotObject
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %.40q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errNotObject
		}
		ms = append(ms, member{key: key, raw: raw})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errNotObject
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return ms, nil
}

// Canonical returns the form of a body that Huawei's Java demo signs: parsed, top-level null
// members dropped, top-level keys sorted ascending, re-serialised compactly the way Jackson writes
// it (non-ASCII kept as UTF-8, control characters escaped). Nested objects keep their received
// key order because the demo's TreeMap only sorts the top level.
func Canonical(body []byte) ([]byte, error) {
	ms, err := objectMembers(body)
	if err != nil {
		return nil, err
	}
	return writeMembers(ms, len(body))
}

func writeMembers(ms []member, size int) ([]byte, error) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].key < ms[j].key })
	var buf bytes.Buffer
	buf.Grow(size)
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
		writeJacksonString(&buf, m.key)
		buf.WriteByte(':')
		dec := json.NewDecoder(bytes.NewReader(m.raw))
		dec.UseNumber()
		if err := writeValue(&buf, dec, 0); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func writeValue(buf *bytes.Buffer, dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("reading JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		return writeContainer(buf, dec, t, depth)
	case string:
		writeJacksonString(buf, t)
	case json.Number:
		buf.WriteString(t.String())
	case bool:
		if t {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	}
	return nil
}

func writeContainer(buf *bytes.Buffer, dec *json.Decoder, open json.Delim, depth int) error {
	isObject := open == '{'
	buf.WriteByte(byte(open)) //nolint:gosec // a json.Delim is one of [ ] { }, all ASCII
	for n := 0; dec.More(); n++ {
		if n > 0 {
			buf.WriteByte(',')
		}
		if isObject {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("reading JSON: %w", err)
			}
			key, _ := tok.(string)
			writeJacksonString(buf, key)
			buf.WriteByte(':')
		}
		if err := writeValue(buf, dec, depth+1); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("reading JSON: %w", err)
	}
	if isObject {
		buf.WriteByte('}')
	} else {
		buf.WriteByte(']')
	}
	return nil
}

const hexUpper = "0123456789ABCDEF"

// writeJacksonString quotes s as Jackson's default writer does: only the quote, the backslash and
// control characters are escaped.
func writeJacksonString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"' || r == '\\':
			buf.WriteByte('\\')
			buf.WriteRune(r)
		case r < 0x20:
			writeControl(buf, byte(r)) //nolint:gosec // r < 0x20 here
		default:
			buf.WriteRune(r)
		}
	}
	buf.WriteByte('"')
}

func writeControl(buf *bytes.Buffer, c byte) {
	switch c {
	case '\b':
		buf.WriteString(`\b`)
	case '\t':
		buf.WriteString(`\t`)
	case '\n':
		buf.WriteString(`\n`)
	case '\f':
		buf.WriteString(`\f`)
	case '\r':
		buf.WriteString(`\r`)
	default:
		buf.WriteString(`\u00`)
		buf.WriteByte(hexUpper[c>>4])
		buf.WriteByte(hexUpper[c&0xF])
	}
}

// MarshalRequest encodes a basic request in canonical form, the form KooGallery sends, with its
// activity field set from the type: the raw body and its canonical form are then the same bytes.
func MarshalRequest(req BasicRequest) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	ms, err := objectMembers(b)
	if err != nil {
		return nil, err
	}
	activity, _ := json.Marshal(req.ActivityName())
	for i := range ms {
		if ms[i].key == "activity" {
			ms[i].raw = activity
		}
	}
	return writeMembers(ms, len(b))
}

// MarshalKitRequest encodes a kit request in canonical form.
func MarshalKitRequest(req KitRequest) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return Canonical(b)
}
