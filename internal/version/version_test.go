package version

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildInfo(t *testing.T) {
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "1.2.3", "abc123"

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector()); err != nil {
		t.Fatal(err)
	}
	want := `# HELP marketplace_operator_build_info The running manager's build: version, source commit and Go release (always 1).
# TYPE marketplace_operator_build_info gauge
marketplace_operator_build_info{commit="abc123",go_version="` + runtime.Version() + `",version="1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if got, want := String(), "marketplace-operator 1.2.3 (commit abc123, "+runtime.Version()+")"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
