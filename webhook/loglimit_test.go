package webhook

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// Refused and failed calls are logged at the default level, one line per kind of trouble every
// troubleLogInterval with the count held back meanwhile, and never with a key or the body.
func TestRefusedAndFailedCallsLogged(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{Verbosity: 0})
	now := testNow
	s, _ := newFakeServer(t, Options{Clock: func() time.Time { return now }})
	s.log = log
	logged := func(msg string) []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, l := range lines {
			if strings.Contains(l, `"msg"="`+msg+`"`) {
				out = append(out, l)
			}
		}
		return out
	}

	const secretField = "a-body-field-no-log-may-show"
	body := mustJSON(t, &koogallery.UpdateInstanceStatusRequest{InstanceID: secretField, Status: koogallery.StatusFreeze})
	wrongKey := []byte("not-the-basic-key")
	for range 5 {
		if rep, _ := do(t, s, signedBasic(DefaultPath, wrongKey, body, now), testBasicKey); rep.ResultCode != koogallery.ResultAuthFailed {
			t.Fatalf("answer %s", rep.ResultCode)
		}
	}
	refused := logged("marketplace call refused")
	if len(refused) != 1 || !strings.Contains(refused[0], `"reason"="signature_mismatch"`) {
		t.Fatalf("refused lines %q", refused)
	}
	// A verified call answered with a failure: an unknown instance.
	for range 3 {
		if rep, _ := do(t, s, signedBasic(DefaultPath, testBasicKey, body, now), testBasicKey); rep.ResultCode != koogallery.ResultInstanceNotFound {
			t.Fatalf("answer %s", rep.ResultCode)
		}
	}
	failed := logged("marketplace call failed")
	if len(failed) != 1 || !strings.Contains(failed[0], `"resultCode"="000003"`) || !strings.Contains(failed[0], `"activity"="updateInstanceStatus"`) {
		t.Fatalf("failed lines %q", failed)
	}

	now = now.Add(troubleLogInterval)
	do(t, s, signedBasic(DefaultPath, wrongKey, body, now), testBasicKey)
	refused = logged("marketplace call refused")
	if len(refused) != 2 || !strings.Contains(refused[1], `"heldBackSinceLastLine"=4`) {
		t.Fatalf("refused lines after the interval %q", refused)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		for _, leak := range []string{secretField, string(testBasicKey), string(wrongKey)} {
			if strings.Contains(l, leak) {
				t.Errorf("a log line shows %q: %s", leak, l)
			}
		}
	}
}
