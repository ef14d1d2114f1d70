package webhook

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

func TestLimitFlags(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if o.MaxConnections != DefaultMaxConnections || o.IdleTimeout != DefaultIdleTimeout || o.IdleTimeout >= time.Minute ||
		o.ReadTimeout != DefaultReadTimeout || o.ReadHeaderTimeout != DefaultReadHeaderTimeout ||
		o.MaxConcurrentVerifications != koogallery.DefaultMaxConcurrent || o.MaxBufferedBodyBytes != DefaultMaxBufferedBodyBytes {
		t.Errorf("defaults %+v", o)
	}
	if err := fs.Parse([]string{"--marketplace-max-connections=8", "--marketplace-idle-timeout=10s", "--marketplace-read-timeout=3s",
		"--marketplace-read-header-timeout=1s", "--marketplace-max-concurrent-verifications=2", "--marketplace-max-buffered-body-bytes=8388608"}); err != nil {
		t.Fatal(err)
	}
	if o.MaxConnections != 8 || o.IdleTimeout != 10*time.Second || o.ReadTimeout != 3*time.Second || o.ReadHeaderTimeout != time.Second ||
		o.MaxConcurrentVerifications != 2 || o.MaxBufferedBodyBytes != 8<<20 {
		t.Errorf("parsed %+v", o)
	}
	// Unset, the header timeout is at most the read timeout.
	short := Options{ReadTimeout: 2 * time.Second}
	short.setDefaults()
	if short.ReadHeaderTimeout != 2*time.Second {
		t.Errorf("read header timeout %s with a read timeout of 2s", short.ReadHeaderTimeout)
	}
	for _, bad := range []Options{{MaxConnections: -1}, {MaxConcurrentVerifications: -2}, {MaxBufferedBodyBytes: 1 << 20}, {IdleTimeout: -time.Second}} {
		bad.setDefaults()
		if bad.validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// BenchmarkRefuseUnsignedKitBodies is the attack of the issue through a real listener: three
// clients at once post the largest unsigned kit body and wait for the refusal. The bodies are
// built to make verification expensive: many top-level members (the worst case of the canonical
// form built as a tree) and a string of invalid UTF-8 (of the streamed one: its canonical form is
// three times the body). One op is the three refusals; each client waits about that long,
// upload included.
func BenchmarkRefuseUnsignedKitBodies(b *testing.B) {
	s, _ := newFakeServer(b, Options{Clock: time.Now})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	url := "http://" + ln.Addr().String() + koogallery.KitPathAllOrgSync
	var members strings.Builder
	members.WriteString(`{"m":0`)
	for i := 0; members.Len() < DefaultMaxKitBodyBytes-20; i++ {
		fmt.Fprintf(&members, `,"m%x":0`, i)
	}
	members.WriteString(`}`)
	for _, shape := range []struct {
		name string
		body []byte
	}{
		{"members", []byte(members.String())},
		{"invalid-utf8", []byte(`{"orgInfoList":"` + strings.Repeat("\xff", DefaultMaxKitBodyBytes-20) + `"}`)},
	} {
		b.Run(shape.name, func(b *testing.B) {
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make(chan error, 3)
				for range 3 {
					wg.Go(func() { errs <- refuseUnsigned(url, shape.body) })
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func refuseUnsigned(url string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	koogallery.SetKitHeaders(req.Header, []byte("not-the-key"), body, nonce(), koogallery.Timestamp(time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Contains(raw, []byte(koogallery.ResultAuthFailed)) {
		return fmt.Errorf("reply %s: %w", raw, err)
	}
	return nil
}
