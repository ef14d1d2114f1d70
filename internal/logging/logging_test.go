package logging

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestCapVerbosity(t *testing.T) {
	var out strings.Builder
	l := CapVerbosity(funcr.New(func(_, args string) { out.WriteString(args + "\n") }, funcr.Options{Verbosity: 10}))
	for v := 0; v <= 10; v++ {
		l.V(v).Info("level", "v", v)
	}
	derived := CapVerbosity(l.WithName("n").WithValues("k", "v"))
	if derived.V(8).Enabled() || !derived.V(MaxVerbosity).Enabled() {
		t.Error("the cap is lost on derived loggers")
	}
	derived.V(9).Info("Request Body")
	l.Error(nil, "errors always pass")
	got := out.String()
	if strings.Contains(got, `"v"=8`) || strings.Contains(got, "Request Body") || !strings.Contains(got, `"v"=7`) || !strings.Contains(got, "errors always pass") {
		t.Errorf("logged:\n%s", got)
	}
	if CapVerbosity(l).GetSink() != l.GetSink() {
		t.Error("capping twice wraps twice")
	}
}
