package koogallery

import (
	"errors"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON scanner over a body held in memory. It validates the grammar encoding/json
// accepts (RFC 8259, strings may hold invalid UTF-8) without building anything: values are
// skipped by position, so checking a body costs one pass and no allocation, whatever its shape.

var (
	errSyntax  = errors.New("invalid JSON")
	errTooDeep = errors.New("JSON nested too deeply")
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the position after the value starting at b[i] (no leading space), checking
// its syntax; a value nested more than maxDepth levels below depth is refused.
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errTooDeep
	}
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		return skipContainer(b, i, depth)
	case c == '"':
		return skipString(b, i)
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return 0, errSyntax
}

func skipContainer(b []byte, i, depth int) (int, error) {
	closing := byte(']')
	if b[i] == '{' {
		closing = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1, nil
	}
	for {
		var err error
		if closing == '}' {
			if i, err = skipKey(b, i); err != nil {
				return 0, err
			}
		}
		if i, err = skipValue(b, i, depth+1); err != nil {
			return 0, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, errSyntax
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closing:
			return i + 1, nil
		default:
			return 0, errSyntax
		}
	}
}

// skipKey skips `"key" :` and the space after it.
func skipKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errSyntax
	}
	i, err := skipString(b, i)
	if err != nil {
		return 0, err
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, errSyntax
	}
	return skipSpace(b, i+1), nil
}

// skipString returns the position after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return 0, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if hex4(b, i+2) < 0 {
					return 0, errSyntax
				}
				i += 6
			default:
				return 0, errSyntax
			}
		case c < 0x20:
			return 0, errSyntax
		default:
			i++
		}
	}
	return 0, errSyntax
}

func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		if i = skipDigits(b, i+1); b[i-1] == '.' {
			return 0, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		return skipExponent(b, i+1)
	}
	return i, nil
}

// skipExponent skips the sign and digits after an e or E at b[i-1].
func skipExponent(b []byte, i int) (int, error) {
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	j := skipDigits(b, i)
	if j == i {
		return 0, errSyntax
	}
	return j, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// hex4 decodes the four hex digits at b[i:], or returns -1.
func hex4(b []byte, i int) rune {
	if len(b)-i < 4 {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// nextRune decodes one character of the valid JSON string content at s[i:] as encoding/json
// does: escapes resolved, a surrogate pair joined, a lone surrogate and every byte of invalid
// UTF-8 read as U+FFFD. It returns the rune and the position after it.
func nextRune(s []byte, i int) (rune, int) {
	c := s[i]
	if c < utf8.RuneSelf && c != '\\' {
		return rune(c), i + 1
	}
	if c != '\\' {
		r, size := utf8.DecodeRune(s[i:])
		return r, i + size
	}
	switch s[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r := hex4(s, i+2)
		if !utf16.IsSurrogate(r) {
			return r, i + 6
		}
		if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
			if pair := utf16.DecodeRune(r, hex4(s, i+8)); pair != unicode.ReplacementChar {
				return pair, i + 12
			}
		}
		return unicode.ReplacementChar, i + 6
	}
	return rune(s[i+1]), i + 2 // " \ /
}

// appendUnquoted appends the decoded content of the valid JSON string b[i:end] (quotes
// included) to dst.
func appendUnquoted(dst, b []byte, i, end int) []byte {
	s := b[:end-1]
	for i++; i < len(s); {
		var r rune
		r, i = nextRune(s, i)
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}
