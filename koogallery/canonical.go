package koogallery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

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

// Bounds of the canonical form. KooGallery's bodies are at most two levels deep and have a
// dozen top-level members with short names; the bounds keep what a hostile body can make the
// canonical form cost small and fixed.
const (
	maxDepth = 32
	// maxMembers bounds the top-level members, maxKeyBytes their names together (as received).
	maxMembers  = 256
	maxKeyBytes = 8 << 10
)

var errCanonicalBounds = errors.New("body has more top-level members, or longer names, than the canonical form accepts")

// Canonical returns the form of a body that Huawei's Java demo signs: parsed, top-level null
// members dropped, top-level keys sorted ascending, re-serialised compactly the way Jackson writes
// it (non-ASCII kept as UTF-8, control characters escaped). Nested objects keep their received
// key order because the demo's TreeMap only sorts the top level.
func Canonical(body []byte) ([]byte, error) {
	out := make([]byte, 0, len(body))
	err := writeCanonical(body, func(p []byte) { out = append(out, p...) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// topMember is a top-level member: its decoded name in an arena, its value's position in the body.
type topMember struct {
	keyStart, keyEnd int
	value            int
}

// writeCanonical streams the canonical form of body to emit, in pieces of at most 4 KiB that are
// valid only during the call. The body is checked first, in one pass that records where each
// top-level member is; the second pass writes. Neither builds a tree: the memory used is fixed
// (the member table, the names, a write buffer) and the time linear in the body.
func writeCanonical(body []byte, emit func([]byte)) error {
	ms, names, err := topMembers(body)
	if err != nil {
		return err
	}
	slices.SortFunc(ms, func(a, b topMember) int {
		return bytes.Compare(names[a.keyStart:a.keyEnd], names[b.keyStart:b.keyEnd])
	})
	for i := 1; i < len(ms); i++ {
		if bytes.Equal(names[ms[i-1].keyStart:ms[i-1].keyEnd], names[ms[i].keyStart:ms[i].keyEnd]) {
			return errors.New("duplicate key")
		}
	}
	w := canonWriter{emit: emit}
	w.byte('{')
	first := true
	for _, m := range ms {
		if isNull(body, m.value) {
			continue
		}
		if !first {
			w.byte(',')
		}
		first = false
		w.decodedString(names[m.keyStart:m.keyEnd])
		w.byte(':')
		w.value(body, m.value)
	}
	w.byte('}')
	w.flush()
	return nil
}

// topMembers checks that body is exactly one JSON object within the bounds and returns its
// members and their decoded names.
func topMembers(body []byte) ([]topMember, []byte, error) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, nil, errNotObject
	}
	var ms []topMember
	var names []byte
	keyBytes := 0
	i = skipSpace(body, i+1)
	for more := i >= len(body) || body[i] != '}'; more; {
		key, keyEnd, value, next, err := memberAt(body, i)
		if err != nil {
			return nil, nil, err
		}
		if keyBytes += keyEnd - key; len(ms) == maxMembers || keyBytes > maxKeyBytes {
			return nil, nil, errCanonicalBounds
		}
		m := topMember{keyStart: len(names), value: value}
		names = appendUnquoted(names, body, key, keyEnd)
		m.keyEnd = len(names)
		ms = append(ms, m)
		switch i = skipSpace(body, next); {
		case i < len(body) && body[i] == ',':
			i = skipSpace(body, i+1)
		case i < len(body) && body[i] == '}':
			more = false
		default:
			return nil, nil, errNotObject
		}
	}
	if skipSpace(body, i+1) != len(body) {
		return nil, nil, errors.New("trailing data after the JSON object")
	}
	return ms, names, nil
}

// memberAt checks the member `"key": value` at body[i] and returns where its key starts and
// ends (quotes included), where its value starts, and the position after the value.
func memberAt(body []byte, i int) (key, keyEnd, value, next int, err error) {
	if i >= len(body) || body[i] != '"' {
		return 0, 0, 0, 0, errNotObject
	}
	if keyEnd, err = skipString(body, i); err != nil {
		return 0, 0, 0, 0, errNotObject
	}
	j := skipSpace(body, keyEnd)
	if j >= len(body) || body[j] != ':' {
		return 0, 0, 0, 0, errNotObject
	}
	value = skipSpace(body, j+1)
	if next, err = skipValue(body, value, 0); err != nil {
		return 0, 0, 0, 0, err
	}
	return i, keyEnd, value, next, nil
}

func isNull(b []byte, i int) bool { return len(b)-i >= 4 && string(b[i:i+4]) == "null" }

// canonWriter writes the canonical form of values already checked by skipValue.
type canonWriter struct {
	buf  [4 << 10]byte
	n    int
	emit func([]byte)
}

func (w *canonWriter) flush() {
	if w.n > 0 {
		w.emit(w.buf[:w.n])
		w.n = 0
	}
}

func (w *canonWriter) byte(c byte) {
	if w.n == len(w.buf) {
		w.flush()
	}
	w.buf[w.n] = c
	w.n++
}

func (w *canonWriter) bytes(p []byte) {
	for len(p) > 0 {
		if w.n == len(w.buf) {
			w.flush()
		}
		k := copy(w.buf[w.n:], p)
		w.n += k
		p = p[k:]
	}
}

// value writes the value at b[i] and returns the position after it.
func (w *canonWriter) value(b []byte, i int) int {
	switch c := b[i]; c {
	case '{', '[':
		closing := byte(']')
		if c == '{' {
			closing = '}'
		}
		w.byte(c)
		i = skipSpace(b, i+1)
		for b[i] != closing {
			if c == '{' {
				i = w.string(b, i)
				w.byte(':')
				i = skipSpace(b, skipSpace(b, i)+1)
			}
			i = skipSpace(b, w.value(b, i))
			if b[i] == ',' {
				w.byte(',')
				i = skipSpace(b, i+1)
			}
		}
		w.byte(closing)
		return i + 1
	case '"':
		return w.string(b, i)
	}
	end := i
	for end < len(b) && !isSpace(b[end]) && b[end] != ',' && b[end] != ']' && b[end] != '}' {
		end++
	}
	w.bytes(b[i:end]) // a number or literal, as received
	return end
}

// string writes the string at b[i] as Jackson does and returns the position after it: runs that
// need no change are copied, everything else is decoded and re-escaped.
func (w *canonWriter) string(b []byte, i int) int {
	w.byte('"')
	i++
	for {
		j := i
		for j < len(b) && b[j] >= 0x20 && b[j] < utf8.RuneSelf && b[j] != '"' && b[j] != '\\' {
			j++
		}
		w.bytes(b[i:j])
		i = j
		if b[i] == '"' {
			w.byte('"')
			return i + 1
		}
		var r rune
		r, i = nextRune(b, i)
		w.rune(r)
	}
}

// decodedString writes an already decoded (valid UTF-8) string as Jackson does.
func (w *canonWriter) decodedString(s []byte) {
	w.byte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		i += size
		w.rune(r)
	}
	w.byte('"')
}

const hexUpper = "0123456789ABCDEF"

// rune writes r as Jackson's default writer does: only the quote, the backslash and control
// characters are escaped.
func (w *canonWriter) rune(r rune) {
	switch {
	case r == '"' || r == '\\':
		w.byte('\\')
		w.byte(byte(r))
	case r < 0x20:
		w.control(byte(r)) //nolint:gosec // r < 0x20 here
	case r < utf8.RuneSelf:
		w.byte(byte(r))
	default:
		var enc [utf8.UTFMax]byte
		w.bytes(enc[:utf8.EncodeRune(enc[:], r)])
	}
}

func (w *canonWriter) control(c byte) {
	switch c {
	case '\b':
		w.bytes([]byte(`\b`))
	case '\t':
		w.bytes([]byte(`\t`))
	case '\n':
		w.bytes([]byte(`\n`))
	case '\f':
		w.bytes([]byte(`\f`))
	case '\r':
		w.bytes([]byte(`\r`))
	default:
		w.bytes([]byte{'\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&0xF]})
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
	var obj bytes.Buffer
	obj.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			obj.WriteByte(',')
		}
		key, _ := json.Marshal(m.key)
		obj.Write(key)
		obj.WriteByte(':')
		if m.key == "activity" {
			obj.Write(activity)
		} else {
			obj.Write(m.raw)
		}
	}
	obj.WriteByte('}')
	return Canonical(obj.Bytes())
}

// MarshalKitRequest encodes a kit request in canonical form.
func MarshalKitRequest(req KitRequest) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return Canonical(b)
}
