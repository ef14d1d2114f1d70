package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator/fakemerchant"
)

const (
	vecKey  = "testAccessKey123"
	vecBody = `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`
	vecN    = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
	vecTS   = "1680508066618"
)

var fixedNow = time.UnixMilli(1680508066618)

// runCLI runs koosim with args and an environment, returning the exit code and both outputs.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := newApp(strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	a.now = func() time.Time { return fixedNow }
	code := a.run(context.Background(), args)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStableForms(t *testing.T) {
	body := writeFile(t, "body.json", vecBody)
	reply := writeFile(t, "reply.json", `{"resultCode":"000000","resultMsg":"success","instanceId":"87b94795-0603-4e24-8ae5-69420d60e3c8"}`)
	keyFile := writeFile(t, "key", vecKey+"\n")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"sign", nil, []string{"sign", "--key", vecKey, "--body-file", body, "--nonce", vecN, "--timestamp", vecTS},
			"signature=CD8D59BB7FCF7574752B5EB0ED04B3ACF4A759DA53F24D30A79ABE45C5D1BA25&timestamp=1680508066618&nonce=" + vecN + "\n"},
		{"sign key from file", nil, []string{"sign", "--key-file", keyFile, "--body-file", body, "--nonce", vecN, "--timestamp", vecTS},
			"signature=CD8D59BB7FCF7574752B5EB0ED04B3ACF4A759DA53F24D30A79ABE45C5D1BA25&timestamp=1680508066618&nonce=" + vecN + "\n"},
		{"sign key from env, default timestamp", map[string]string{"KOOSIM_KEY": vecKey}, []string{"sign", "--body-file", body, "--nonce", vecN},
			"signature=CD8D59BB7FCF7574752B5EB0ED04B3ACF4A759DA53F24D30A79ABE45C5D1BA25&timestamp=1680508066618&nonce=" + vecN + "\n"},
		{"kit-sign", nil, []string{"kit-sign", "--key", vecKey, "--body-file", body, "--nonce", vecN, "--timestamp", vecTS},
			"x-sign: ABB44B4C7A867A9F5EB8D9B7D9DF42E804FF66BC084EE412C49CFAFBFD5D8BE6\nx-timestamp: 1680508066618\nx-nonce: " + vecN + "\n"},
		{"body-sign", nil, []string{"body-sign", "--key", vecKey, "--body-file", reply},
			`sign_type="HMAC-SHA256", signature="y63olT+DsckhbErrQra9a4WEOePNS8KW9nDy/RutT8E="` + "\n"},
		{"encrypt 1", nil, []string{"encrypt", "--key", vecKey, "--type", "1", "--iv", "A1b2C3d4E5f6G7h8", "admin@example.com"},
			"A1b2C3d4E5f6G7h8GWWdTC2G+G3b8S/kwaWTYAO2AbUAra1UUVgiqns0Kbk=\n"},
		{"encrypt 2", nil, []string{"encrypt", "--key", vecKey, "--type", "2", "--iv", "A1b2C3d4E5f6G7h8", "admin@example.com"},
			"A1b2C3d4E5f6G7h89nyjWJDEC9SMrP8fTmG1MvJ/v2zM81387u6Ws4QK/+4=\n"},
		{"decrypt 2", nil, []string{"decrypt", "--key", vecKey, "--type", "2", "A1b2C3d4E5f6G7h89nyjWJDEC9SMrP8fTmG1MvJ/v2zM81387u6Ws4QK/+4="},
			"admin@example.com\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.env, "", tt.args...)
			if code != 0 || out != tt.want {
				t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %s", code, out, tt.want, errOut)
			}
		})
	}
}

func TestSignStdinAndRandomNonce(t *testing.T) {
	code, out, _ := runCLI(t, nil, vecBody, "sign", "--key", vecKey, "--body-file", "-", "--timestamp", vecTS)
	if code != 0 || !strings.HasPrefix(out, "signature=") || len(out) != len("signature=")+64+len("&timestamp=")+13+len("&nonce=")+64+1 {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}} {
		if code, out, _ := runCLI(t, nil, "", args...); code != 0 || !strings.Contains(out, "lifecycle") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
	for name := range commands {
		code, out, _ := runCLI(t, nil, "", name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: koosim "+name) || !strings.Contains(out, "-file") {
			t.Errorf("%s --help: exit %d\n%s", name, code, out)
		}
	}
	if code, out, _ := runCLI(t, nil, "", "send", "newInstance", "--help"); code != 0 || !strings.Contains(out, "--order-id") && !strings.Contains(out, "-order-id") {
		t.Errorf("send newInstance --help: exit %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"nope"},
		{"sign", "--body-file", "x"},
		{"sign", "--key", "k"},
		{"sign", "--bogus"},
		{"encrypt", "--key", "k"},
		{"send"},
		{"send", "deleteEverything", "--url", "http://127.0.0.1:1", "--key", "k"},
		{"lifecycle", "--key", "k"},
		{"load", "--url", "http://127.0.0.1:1", "--key", "k"},
		{"send", "newInstance", "--url", "http://127.0.0.1:1", "--key", "k", "--retry-schedule", "soon"},
	}
	for _, args := range tests {
		if code, _, _ := runCLI(t, nil, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func merchant(t *testing.T) (*httptest.Server, *fakemerchant.Server) {
	t.Helper()
	m := fakemerchant.New(fakemerchant.Config{BasicKey: []byte(vecKey), KitKey: []byte("kit-key"), Clock: func() time.Time { return fixedNow }, ReadyAfterPolls: 1})
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return srv, m
}

func TestLifecycleCommand(t *testing.T) {
	srv, _ := merchant(t)
	env := map[string]string{"KOOSIM_KEY": vecKey, "KOOSIM_URL": srv.URL + "/saasproduce"}
	code, out, errOut := runCLI(t, env, "", "lifecycle", "--poll-interval", "1ms", "--test")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "STEP") {
		t.Fatalf("table:\n%s", out)
	}
	for i, step := range []string{"create", "poll", "renew", "freeze", "unfreeze", "upgrade", "release"} {
		f := strings.Fields(lines[i+1])
		if f[0] != step {
			t.Errorf("row %d is %q", i+1, lines[i+1])
		}
		wantCode := koogallery.ResultSuccess
		if step == "create" {
			wantCode = koogallery.ResultProcessing
		}
		if f[2] != wantCode {
			t.Errorf("%s: result %s, want %s", step, f[2], wantCode)
		}
	}
}

func TestLifecycleCommandFails(t *testing.T) {
	srv, m := merchant(t)
	m.FailNext(koogallery.ActivityUpdateInstanceStatus, 10, koogallery.ResultInternalError)
	code, out, errOut := runCLI(t, nil, "", "lifecycle", "--url", srv.URL, "--key", vecKey, "--poll-interval", "1ms", "--retry-schedule", "1ms")
	if code != 1 || !strings.Contains(out, "freeze") || !strings.Contains(errOut, "freeze") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestSendCommand(t *testing.T) {
	srv, m := merchant(t)
	env := map[string]string{"KOOSIM_KEY": vecKey, "KOOSIM_KIT_KEY": "kit-key", "KOOSIM_URL": srv.URL}
	code, out, errOut := runCLI(t, env, "", "send", "newInstance", "--order-id", "CS1", "--business-id", "inst-1", "--poll-interval", "1ms")
	if code != 0 || !strings.Contains(out, "instanceId inst-1 ready") || !strings.Contains(out, "frontEndUrl") || !strings.Contains(errOut, "queryInstance") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, env, "", "send", "updateInstanceStatus", "--instance-id", "inst-1", "--status", "FREEZE")
	if in, _ := m.Instance("inst-1"); code != 0 || !in.Frozen || !strings.Contains(out, `"000000"`) {
		t.Fatalf("freeze: exit %d %s %+v", code, out, in)
	}
	code, out, _ = runCLI(t, env, "", "send", "releaseInstance", "--instance-id", "unknown")
	if code != 1 {
		t.Fatalf("release of an unknown instance: exit %d %s", code, out)
	}
	kit := writeFile(t, "tenant.json", `{"instanceId":"inst-1","orderId":"CS1","tenantId":"t1","tenantCode":"acme","name":"Acme","domainName":"acme.example.com","flag":1,"testFlag":1,"timeStamp":"20230403154746618"}`)
	code, out, errOut = runCLI(t, env, "", "send", "tenantSync", "--body-file", kit)
	if code != 0 || !strings.Contains(out, "000000") {
		t.Fatalf("kit: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestLoadCommand(t *testing.T) {
	srv, _ := merchant(t)
	code, out, errOut := runCLI(t, nil, "", "load", "--url", srv.URL, "--key", vecKey, "--count", "20", "--concurrency", "2")
	if code != 0 || !strings.Contains(out, "sent 20, succeeded 20") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "", "load", "--url", srv.URL, "--key", vecKey, "--count", "5", "--json")
	var res simulator.LoadResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Succeeded != 5 || res.P99 <= 0 {
		t.Fatalf("--json: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestServeCommand(t *testing.T) {
	orders := writeFile(t, "orders.json", `[{"orderId":"CS9","orderType":"NEW","createTime":"20260301080000","orderLine":[{"orderLineId":"CS9-000001","chargingMode":"PERIOD","productInfo":[{"skuCode":"gold"}]}]}]`)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	var out bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &out, func(k string) string { return map[string]string{"KOOSIM_SK": "sk"}[k] })
	a.onListen = func(s string) { addr <- s }
	done := make(chan int, 1)
	go func() {
		done <- a.run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--ak", "ak", "--orders-file", orders})
	}()
	var base string
	select {
	case base = <-addr:
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, out.String())
	}
	c, err := openapi.NewClient(openapi.Config{Endpoint: "http://" + base, AK: "ak", SK: "sk"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"CS9", simulator.MockMonthChange} {
		if _, err := c.QueryOrder(context.Background(), id, ""); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	resp, err := http.Get("http://" + base + "/nope")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %v %v", resp, err)
	}
	if resp != nil {
		_ = resp.Body.Close()
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d: %s", code, out.String())
	}
}
