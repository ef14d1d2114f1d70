package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

func queryBody(tb testing.TB, ids string) []byte {
	return mustJSON(tb, &koogallery.QueryInstanceRequest{InstanceID: ids})
}

func TestVerificationFailuresAre000001(t *testing.T) {
	s, _ := newFakeServer(t, Options{})
	body := queryBody(t, "x")
	replayed := signedBasic(DefaultPath, testBasicKey, body, testNow)
	if rep, _ := do(t, s, replayed.Clone(replayed.Context()), testBasicKey); rep.ResultCode != koogallery.ResultInstanceNotFound {
		t.Fatalf("first use of the nonce: %s", rep.ResultCode)
	}
	tampered := signedBasic(DefaultPath, testBasicKey, body, testNow)
	tampered.Body = httpBody(bytes.Replace(body, []byte(`"x"`), []byte(`"y"`), 1))
	noSig := signedBasic(DefaultPath, testBasicKey, body, testNow)
	noSig.URL.RawQuery = strings.Replace(noSig.URL.RawQuery, "signature=", "sig=", 1)
	cases := map[string]*http.Request{
		"wrong key":        signedBasic(DefaultPath, []byte("not-the-key"), body, testNow),
		"replayed nonce":   replayed,
		"stale timestamp":  signedBasic(DefaultPath, testBasicKey, body, testNow.Add(-2*time.Minute)),
		"future timestamp": signedBasic(DefaultPath, testBasicKey, body, testNow.Add(2*time.Minute)),
		"tampered body":    tampered,
		"no signature":     noSig,
		"kit key on basic": signedBasic(DefaultPath, testKitKey, body, testNow),
		"basic key on kit": signedKit(koogallery.KitTenantSync, testBasicKey, []byte(`{}`), testNow),
	}
	for name, r := range cases {
		key := testBasicKey
		if strings.Contains(r.URL.Path, "produceAPI") {
			key = testKitKey
		}
		rep, raw := do(t, s, r, key)
		if rep.ResultCode != koogallery.ResultAuthFailed {
			t.Errorf("%s: %s", name, raw)
		}
		if bytes.Contains(raw, testBasicKey) || bytes.Contains(raw, testKitKey) {
			t.Errorf("%s: reply leaks a key", name)
		}
	}
	if n := testutil.ToFloat64(signatureRejections.WithLabelValues("basic", "stale_timestamp")); n < 1 {
		t.Errorf("stale rejection not counted: %v", n)
	}
}

func httpBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestBodyLimitsAndMalformed(t *testing.T) {
	s, _ := newFakeServer(t, Options{MaxBodyBytes: 1024, MaxKitBodyBytes: 2048})
	big := mustJSON(t, &koogallery.QueryInstanceRequest{InstanceID: strings.Repeat("a,", 600) + "a"})
	for name, body := range map[string][]byte{
		"oversized":      big,
		"not json":       []byte(`{"activity":`),
		"trailing data":  []byte(`{"activity":"queryInstance","instanceId":"a"} {}`),
		"wrong type":     []byte(`{"activity":"queryInstance","instanceId":7}`),
		"unknown":        []byte(`{"activity":"deleteEverything"}`),
		"missing field":  []byte(`{"activity":"newInstance","orderId":"CS1","orderLineId":"CS1-1"}`),
		"duplicate keys": []byte(`{"activity":"queryInstance","instanceId":"a","instanceId":"b"}`),
	} {
		rep, raw := do(t, s, signedBasic(DefaultPath, testBasicKey, body, testNow), testBasicKey)
		if rep.ResultCode != koogallery.ResultInvalidParam {
			t.Errorf("%s: %s", name, raw)
		}
	}
	// An oversized body is refused even with no Content-Length, without reading past the limit.
	r := signedBasic(DefaultPath, testBasicKey, big, testNow)
	r.ContentLength = -1
	if rep, _ := do(t, s, r, testBasicKey); rep.ResultCode != koogallery.ResultInvalidParam {
		t.Errorf("chunked oversized body: %s", rep.ResultCode)
	}
	kitBig := []byte(`{"x":"` + strings.Repeat("a", 3000) + `"}`)
	if rep, _ := do(t, s, signedKit(koogallery.KitAllOrgSync, testKitKey, kitBig, testNow), testKitKey); rep.ResultCode != koogallery.ResultInvalidParam {
		t.Errorf("oversized kit body: %s", rep.ResultCode)
	}
}

func TestReplyEncoding(t *testing.T) {
	w := httptest.NewRecorder()
	ex := &exchange{w: w, key: func() []byte { return testBasicKey }}
	ex.send(reply(koogallery.ResultProcessing, "租户"))
	ex.send(success("second reply is dropped"))
	body := w.Body.String()
	if body != `{"resultCode":"000004","resultMsg":"\u79df\u6237"}` || ex.code != koogallery.ResultProcessing {
		t.Errorf("reply %s code %s", body, ex.code)
	}
	if got, want := w.Header().Get(koogallery.HeaderBodySign), koogallery.BodySign(testBasicKey, w.Body.Bytes()); got != want {
		t.Errorf("Body-Sign %q, want %q", got, want)
	}
	for _, tt := range []struct {
		v    any
		code string
	}{
		{koogallery.NewInstanceReply{Reply: success("")}, "000000"},
		{koogallery.QueryInstanceReply{Reply: notFound()}, "000003"},
		{struct{}{}, "000005"},
	} {
		if got := resultCode(tt.v); got != tt.code {
			t.Errorf("resultCode(%T) = %s", tt.v, got)
		}
	}
}

func TestRoutingAndMethods(t *testing.T) {
	s, _ := newFakeServer(t, Options{})
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/elsewhere", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("unknown path: %d", w.Code)
	}
	r := signedBasic(DefaultPath, testBasicKey, queryBody(t, "x"), testNow)
	r.Method = http.MethodGet
	if rep, _ := do(t, s, r, testBasicKey); rep.ResultCode != koogallery.ResultInvalidParam {
		t.Errorf("GET: %s", rep.ResultCode)
	}
	// Kit paths work bare and under the production path; both are signed with the kit key.
	body := []byte(`{"instanceId":"","tenantId":"T","tenantCode":"c","name":"n","domainName":"d","flag":1,"testFlag":0,"timeStamp":"` +
		koogallery.FormatKitTime(testNow) + `"}`)
	for _, p := range []string{koogallery.KitPathTenantSync, DefaultPath + koogallery.KitPathTenantSync} {
		r := signedKit(koogallery.KitTenantSync, testKitKey, body, testNow)
		r.URL.Path = p
		if rep, raw := do(t, s, r, testKitKey); rep.ResultCode != koogallery.ResultSuccess {
			t.Errorf("%s: %s", p, raw)
		}
	}
	w = httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/other"+koogallery.KitPathTenantSync, nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("kit path under a foreign prefix: %d", w.Code)
	}
}

func TestPanicIs000005(t *testing.T) {
	s, _ := newFakeServer(t, Options{})
	s.client = nil // the first client call panics
	before := testutil.ToFloat64(callbacks.WithLabelValues(koogallery.ActivityQueryInstance, koogallery.ResultInternalError))
	rep, raw := do(t, s, signedBasic(DefaultPath, testBasicKey, queryBody(t, "x"), testNow), testBasicKey)
	if rep.ResultCode != koogallery.ResultInternalError || strings.Contains(string(raw), "goroutine") || strings.Contains(string(raw), "nil pointer") {
		t.Errorf("panic reply %s", raw)
	}
	if after := testutil.ToFloat64(callbacks.WithLabelValues(koogallery.ActivityQueryInstance, koogallery.ResultInternalError)); after != before+1 {
		t.Errorf("panic not counted: %v → %v", before, after)
	}
}

func TestQueryWithEncryptedCredentials(t *testing.T) {
	inst := readyInstance("cs1-000001", "inst-1")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "mpi-cs1-000001", Name: "marketplace-credentials", OwnerReferences: ownerRefs(inst)},
		Data: map[string][]byte{"userName": []byte("admin"), "password": []byte("s3cret-Pass")}}
	s, _ := newFakeServer(t, Options{AppInfoEncryptType: koogallery.EncryptAES256}, inst, secret)
	_, raw := do(t, s, signedBasic(DefaultPath, testBasicKey, queryBody(t, "inst-1,unknown"), testNow), testBasicKey)
	var rep koogallery.QueryInstanceReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.ResultCode != "000000" || rep.EncryptType != koogallery.EncryptAES256 || len(rep.Info) != 1 || rep.Info[0].AppInfo == nil {
		t.Fatalf("reply %s", raw)
	}
	app := rep.Info[0].AppInfo
	if strings.Contains(string(raw), "s3cret-Pass") {
		t.Error("password sent in clear although encryption is configured")
	}
	pw, err := koogallery.DecryptCredential(string(testBasicKey), koogallery.EncryptAES256, app.Password)
	if err != nil || pw != "s3cret-Pass" {
		t.Errorf("password decrypts to %q, %v", pw, err)
	}
	if app.FrontEndURL != "https://cs1-000001.apps.example.com/" {
		t.Errorf("frontEndUrl %q", app.FrontEndURL)
	}
}

func TestServeAndGracefulShutdown(t *testing.T) {
	s, _ := newFakeServer(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	body := queryBody(t, "x")
	q := koogallery.BasicQuery(testBasicKey, body, nonce(), koogallery.Timestamp(testNow))
	resp, err := http.Post("http://"+ln.Addr().String()+DefaultPath+"?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"000003"`) {
		t.Errorf("reply %d %s", resp.StatusCode, raw)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after the context ended")
	}
	if s.NeedLeaderElection() {
		t.Error("every replica must serve")
	}
}

func TestOptions(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--marketplace-keys-dir=/keys", "--marketplace-appinfo-encrypt-type=2", "--marketplace-provision-debug-orders"}); err != nil {
		t.Fatal(err)
	}
	if o.BindAddress != ":8090" || o.Path != "/saasproduce" || o.KeysDir != "/keys" || o.AppInfoEncryptType != koogallery.EncryptAES128 || !o.AllowDebugProvisioning {
		t.Errorf("options %+v", o)
	}
	if err := fs.Parse([]string{"--marketplace-appinfo-encrypt-type=3"}); err == nil {
		t.Error("encrypt type 3 accepted")
	}
	for _, bad := range []Options{{Path: "saasproduce"}, {TLSCertFile: "c"}} {
		bad.setDefaults()
		if bad.validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
