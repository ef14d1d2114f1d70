package koogallery

import (
	"encoding/json"
	"errors"
)

// ParseBasicRequest decodes and validates a basic-interface body, dispatching on its activity.
// It is strict about syntax and types (one object, no duplicate keys, no trailing data, strings
// where strings belong) but tolerates unknown fields: KooGallery has added fields to existing
// activities without notice, and rejecting them would fail every production call. When the body
// decodes but does not validate, the request is returned together with the error so that the
// caller can still answer with the instance it names.
func ParseBasicRequest(body []byte) (BasicRequest, error) {
	ms, err := objectMembers(body)
	if err != nil {
		return nil, paramError(KindBadJSON, "invalid JSON: "+err.Error())
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
	if _, err := objectMembers(body); err != nil {
		return nil, paramError(KindBadJSON, "invalid JSON: "+err.Error())
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
