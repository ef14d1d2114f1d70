package webhook

import (
	"strings"
	"testing"
)

func TestInstanceName(t *testing.T) {
	long := strings.Repeat("A", 70)
	tests := []struct {
		in, want string
	}{
		{"CS2211181819B4LVS-000001", "cs2211181819b4lvs-000001"},
		{"abc", "abc"},
		{"a", "a"},
		{strings.Repeat("x", 63), strings.Repeat("x", 63)},
		{"CS_1.2", "cs-1-2-" + shortHash("CS_1.2", 10)},
		{"-lead", "lead-" + shortHash("-lead", 10)},
		{"trail-", "trail-" + shortHash("trail-", 10)},
		{"___", "order-" + shortHash("___", 10)},
		{long, strings.ToLower(long[:52]) + "-" + shortHash(long, 10)},
		{"订单-1", "1-" + shortHash("订单-1", 10)},
	}
	for _, tt := range tests {
		got := InstanceName(tt.in)
		if got != tt.want {
			t.Errorf("InstanceName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if len(got) > 63 || !dnsLabel.MatchString(got) {
			t.Errorf("InstanceName(%q) = %q is not a DNS label", tt.in, got)
		}
	}
	// Two long IDs sharing a prefix must not share a name (no plain truncation).
	a, b := InstanceName(long+"1"), InstanceName(long+"2")
	if a == b {
		t.Errorf("long IDs collide: %s", a)
	}
	if first, again := InstanceName("CS1_x"), InstanceName("CS1_x"); first != again {
		t.Error("not deterministic")
	}
}

func TestDebugInstanceID(t *testing.T) {
	id := debugInstanceID("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001")
	if !isDebugInstanceID(id) || !instanceIDPattern.MatchString(id) || len(id) > 64 {
		t.Errorf("debug ID %q", id)
	}
	if id != debugInstanceID("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001") {
		t.Error("debug ID not deterministic")
	}
	for _, notDebug := range []string{"87b94795-0603-4e24-8ae5-69420d60e3c8", "debug-xyz", "debug-" + strings.Repeat("g", 24)} {
		if isDebugInstanceID(notDebug) {
			t.Errorf("%q taken for a debug ID", notDebug)
		}
	}
}
