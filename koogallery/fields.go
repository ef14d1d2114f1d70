package koogallery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// TestFlag is the basic activities' testFlag: "1" marks a debug call; absent or "0" is
// production (newer pages omit it for production, older ones send "0").
type TestFlag string

// Debug and production values of TestFlag.
const (
	TestFlagProduction TestFlag = "0"
	TestFlagDebug      TestFlag = "1"
)

// IsTest reports whether the call is a debug call.
func (f TestFlag) IsTest() bool { return f == TestFlagDebug }

// Int is an integer field that also accepts a numeric JSON string, because KooGallery's examples
// show both forms for the same kit and product fields. Set tells an explicit 0 from an absent field.
type Int struct {
	Value int
	Set   bool
}

// NewInt returns a set Int.
func NewInt(v int) Int { return Int{Value: v, Set: true} }

// MarshalJSON writes the number, or null when unset.
func (i Int) MarshalJSON() ([]byte, error) {
	if !i.Set {
		return []byte("null"), nil
	}
	return []byte(strconv.Itoa(i.Value)), nil
}

// UnmarshalJSON accepts a JSON number, a numeric string or null.
func (i *Int) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*i = Int{}
		return nil
	}
	s := string(b)
	if len(b) > 1 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("decoding integer string: %w", err)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer, got %.20q", s)
	}
	*i = Int{Value: n, Set: true}
	return nil
}

// FlexString is a string field that also accepts a JSON number or boolean, kept as its literal
// text (kit user fields such as enable and employeeType appear in both forms).
type FlexString string

// UnmarshalJSON accepts a string, number, boolean or null.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("decoding string: %w", err)
		}
		*s = FlexString(v)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*s = ""
		return nil
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return fmt.Errorf("want a string, got an object or array")
	}
	*s = FlexString(b)
	return nil
}

// checker collects the first validation failure so that Validate methods read as a list of
// field rules instead of a ladder of ifs.
type checker struct{ err error }

func (c *checker) fail(kind Kind, format string, args ...any) {
	if c.err == nil {
		c.err = paramError(kind, fmt.Sprintf(format, args...))
	}
}

func (c *checker) required(name, v string, max int) {
	if v == "" {
		c.fail(KindMissingField, "%s is required", name)
		return
	}
	c.optional(name, v, max)
}

func (c *checker) optional(name, v string, max int) {
	if n := utf8.RuneCountInString(v); n > max {
		c.fail(KindFieldTooLong, "%s is %d characters long, the maximum is %d", name, n, max)
	}
}

func (c *checker) oneOf(name, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	c.fail(KindBadValue, "%s has an unsupported value", name)
}

// activity accepts an empty field: the request type already names the activity, and requests
// built in code (the simulator, koosim) leave it to MarshalRequest.
func (c *checker) activity(got, want string) {
	if got != "" && got != want {
		c.fail(KindBadValue, "activity must be %s", want)
	}
}

func (c *checker) testFlag(f TestFlag, required bool) {
	if f == "" {
		if required {
			c.fail(KindMissingField, "testFlag is required")
		}
		return
	}
	c.oneOf("testFlag", string(f), string(TestFlagProduction), string(TestFlagDebug))
}

func (c *checker) intEnum(name string, v Int, allowed ...int) {
	if !v.Set {
		c.fail(KindMissingField, "%s is required", name)
		return
	}
	for _, a := range allowed {
		if v.Value == a {
			return
		}
	}
	c.fail(KindBadValue, "%s has an unsupported value", name)
}

func (c *checker) kitTime(name, v string) {
	if v == "" {
		c.fail(KindMissingField, "%s is required", name)
		return
	}
	if _, err := ParseKitTime(v); err != nil {
		c.fail(KindBadValue, "%s must be yyyyMMddHHmmssSSS", name)
	}
}
