package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--marketplace-keys-dir", "/keys", "--ingress-namespaces", " ingress-nginx, ,gateway ",
		"--freeze-grace", "30m", "--leader-elect"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.reconciler.IngressNamespaces, ","); got != "ingress-nginx,gateway" {
		t.Errorf("ingress namespaces %q", got)
	}
	if o.reconciler.FreezeGrace != 30*time.Minute || !o.leaderElect || !o.metricsSecure {
		t.Errorf("options %+v", o)
	}
	if o.marketplace.BindAddress != ":8090" || o.marketplace.Path != "/saasproduce" {
		t.Errorf("marketplace defaults %q %q", o.marketplace.BindAddress, o.marketplace.Path)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"keys dir missing": {nil, "--marketplace-keys-dir is required"},
		"unknown flag":     {[]string{"--marketplace-keys-dir", "/k", "--no-such-flag"}, "no-such-flag"},
		"bad duration":     {[]string{"--marketplace-keys-dir", "/k", "--freeze-grace", "soon"}, "freeze-grace"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// --version answers without the configuration a run needs.
func TestParseFlagsVersion(t *testing.T) {
	o, err := parseFlags([]string{"--version"})
	if err != nil || !o.version {
		t.Fatalf("options %+v, error %v", o, err)
	}
}
