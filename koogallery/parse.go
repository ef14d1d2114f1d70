package koogallery

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"unicode"
	"unicode/utf8"
)

// ParseBasicRequest decodes and validates a basic-interface body, dispatching on its activity.
// It is strict about syntax and types (one object, no duplicate keys, no two keys in one object
// that differ only in case, no trailing data, strings where strings belong) but tolerates
// unknown fields: KooGallery has added fields to existing
// activities without notice, and rejecting them would fail every production call. When the body
// decodes but does not validate, the request is returned together with the error so that the
// caller can still answer with the instance it names.
func ParseBasicRequest(body []byte) (BasicRequest, error) {
	ms, err := objectMembers(body)
	if err != nil {
		return nil, paramError(KindBadJSON, "invalid JSON: "+err.Error())
	}
	if err := checkKeyCase(body); err != nil {
		return nil, err
	}
	activity, err := stringMember(ms, "activity")
	if err != nil {
		return nil, err
	}
	req := newBasicRequest(activity)
	if req == nil {
		return nil, paramError(KindUnknownActivity, "unknown activity")
	}
	if err := decodeInto(body, req); err != nil {
		return nil, err
	}
	return req, req.Validate()
}

// ParseKitRequest decodes and validates a kit sync body of the given interface.
func ParseKitRequest(kind KitKind, body []byte) (KitRequest, error) {
	req := newKitRequest(kind)
	if req == nil {
		return nil, paramError(KindUnknownActivity, "unknown kit interface")
	}
	ms, err := objectMembers(body)
	if err != nil {
		return nil, paramError(KindBadJSON, "invalid JSON: "+err.Error())
	}
	if err := checkKeyCase(body); err != nil {
		return nil, err
	}
	if err := checkListStrings(ms); err != nil {
		return nil, err
	}
	if err := decodeInto(body, req); err != nil {
		return nil, err
	}
	return req, req.Validate()
}

func stringMember(ms []member, key string) (string, error) {
	for _, m := range ms {
		if m.key != key {
			continue
		}
		var s string
		if err := json.Unmarshal(m.raw, &s); err != nil {
			return "", paramError(KindBadValue, key+" must be a string")
		}
		if s == "" {
			break
		}
		return s, nil
	}
	return "", paramError(KindMissingField, key+" is required")
}

// decodeInto reports type errors by field name only: json's own messages can quote values.
func decodeInto(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return paramError(KindBadValue, te.Field+" has the wrong JSON type")
	}
	return paramError(KindBadValue, "a field has the wrong JSON type or format")
}

// checkKeyCase refuses a body, valid JSON already, in which any object holds two keys that are
// equal ignoring case as encoding/json folds them. encoding/json matches keys to fields ignoring
// case, so of orderId and ORDERID the later would silently win, while another reader of the
// same signed text may take the first.
func checkKeyCase(body []byte) error {
	var open []int // per open container: where its keys start in names, -1 for an array
	var names []string
	for i := 0; i < len(body); {
		switch body[i] {
		case '{', '[':
			start := -1
			if body[i] == '{' {
				start = len(names)
			}
			open = append(open, start)
			i++
		case '}', ']':
			if len(open) == 0 {
				return paramError(KindBadJSON, "invalid JSON")
			}
			if start := open[len(open)-1]; start >= 0 {
				keys := names[start:]
				slices.Sort(keys)
				if len(slices.Compact(keys)) != len(keys) {
					return paramError(KindBadJSON, "invalid JSON: an object has two keys that differ only in case")
				}
				names = names[:start]
			}
			open = open[:len(open)-1]
			i++
		case '"':
			end, err := skipString(body, i)
			if err != nil {
				return paramError(KindBadJSON, "invalid JSON")
			}
			if j := skipSpace(body, end); j < len(body) && body[j] == ':' {
				names = append(names, foldKey(appendUnquoted(nil, body, i, end)))
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// foldKey folds a decoded key as encoding/json does to match it to a field.
func foldKey(k []byte) string {
	out := make([]byte, 0, len(k))
	for i := 0; i < len(k); {
		if c := k[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(k[i:])
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return string(out)
}

// checkListStrings applies checkKeyCase to the kit lists that may arrive as a string holding
// JSON (userList, orgInfoList). A string that is not JSON is left to the decoder to refuse.
func checkListStrings(ms []member) error {
	for _, m := range ms {
		if (m.key != "userList" && m.key != "orgInfoList") || !bytes.HasPrefix(m.raw, []byte(`"`)) {
			continue
		}
		var s string
		if json.Unmarshal(m.raw, &s) != nil || !json.Valid([]byte(s)) {
			continue
		}
		if err := checkKeyCase([]byte(s)); err != nil {
			return err
		}
	}
	return nil
}
