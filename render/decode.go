package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// decodeOne decodes rendered YAML or JSON that must hold exactly one object. Empty documents
// (a leading "---", comment-only documents) do not count.
func decodeOne(rendered []byte) (*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(rendered), 4096)
	var found *unstructured.Unstructured
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalidObject, describeDecodeError(err))
		}
		obj, err := toObject(raw)
		if err != nil {
			return nil, err
		}
		if obj == nil {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w, found several documents; give each object its own manifest", ErrObjectCount)
		}
		found = obj
	}
	if found == nil {
		return nil, fmt.Errorf("%w, found none", ErrObjectCount)
	}
	return found, nil
}

// toObject turns one decoded document into an object, or nil for an empty document. The
// apimachinery JSON decoder is used because it keeps integers as int64, as the API server and
// unstructured helpers (NestedInt64 on spec.replicas, say) expect, where encoding/json would
// make every number a float64.
func toObject(raw json.RawMessage) (*unstructured.Unstructured, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%w: renders %s, not an object", ErrInvalidObject, jsonKind(raw[0]))
	}
	var content map[string]any
	if err := utiljson.Unmarshal(raw, &content); err != nil {
		// Not expected after a successful decode; the message is kept generic on purpose.
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidObject)
	}
	return &unstructured.Unstructured{Object: content}, nil
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "a list"
	case '"':
		return "a string"
	default:
		return "a scalar"
	}
}

// yamlLineError matches the parser errors of the YAML library: their problem text is one of a
// fixed set of phrases, never a piece of the input.
var yamlLineError = regexp.MustCompile(`yaml: line (\d+): ([a-zA-Z ,':]+)$`)

// describeDecodeError says why rendered output does not decode without quoting it. Some
// decoder messages echo input (an invalid "---" line is printed whole), and the input may be
// a Secret, so only positions and fixed parser phrases get through.
func describeDecodeError(err error) string {
	var jsonErr utilyaml.JSONSyntaxError
	if errors.As(err, &jsonErr) {
		return fmt.Sprintf("malformed JSON at byte %d", jsonErr.Offset)
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	}
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Sprintf("malformed YAML at line %s: %s", m[1], m[2])
	}
	return "malformed YAML or JSON"
}
