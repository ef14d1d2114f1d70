package main

import (
	"strings"
	"testing"
	"time"
)

func TestUsagePushIntervalFlag(t *testing.T) {
	o, err := parseFlags([]string{"--marketplace-keys-dir", "/keys"})
	if err != nil || o.usage.Interval != time.Hour {
		t.Fatalf("default interval %v, error %v", o.usage.Interval, err)
	}
	o, err = parseFlags([]string{"--marketplace-keys-dir", "/keys", "--usage-push-interval", "5s"})
	if err != nil || o.usage.Interval != 5*time.Second {
		t.Fatalf("interval %v, error %v", o.usage.Interval, err)
	}
	if _, err := parseFlags([]string{"--marketplace-keys-dir", "/keys", "--usage-push-interval", "10ms"}); err == nil ||
		!strings.Contains(err.Error(), "usage-push-interval") {
		t.Fatalf("want the interval refused, got %v", err)
	}
}

func TestUsagePushWorkersFlag(t *testing.T) {
	o, err := parseFlags([]string{"--marketplace-keys-dir", "/keys"})
	if err != nil || o.usage.MaxConcurrentReconciles != 2 {
		t.Fatalf("default workers %d, error %v", o.usage.MaxConcurrentReconciles, err)
	}
	o, err = parseFlags([]string{"--marketplace-keys-dir", "/keys", "--usage-push-workers", "16"})
	if err != nil || o.usage.MaxConcurrentReconciles != 16 {
		t.Fatalf("workers %d, error %v", o.usage.MaxConcurrentReconciles, err)
	}
	if _, err := parseFlags([]string{"--marketplace-keys-dir", "/keys", "--usage-push-workers", "0"}); err == nil ||
		!strings.Contains(err.Error(), "usage-push-workers") {
		t.Fatalf("want 0 workers refused, got %v", err)
	}
}
