package webhook_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	saasv1alpha1 "github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
	"github.com/marketplace-operator/marketplace-operator/internal/testenv"
	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// hostileReadTimeout is the read timeout of the replica under attack: short, so the slow-client
// rows end quickly, yet long enough for an honest request on a loaded machine.
const hostileReadTimeout = 2 * time.Second

// Answers, as the rows write them: "<HTTP status> <result code>" for a KooGallery reply (whose
// Body-Sign the exchange has verified), "<HTTP status>" for net/http's own refusals, then
// "closed" when the server hangs up.
const closed = "closed"

func signedReply(code string) string { return "200 " + code }

// hostileRow is one hostile input and the answer the endpoint must give.
type hostileRow struct {
	name string
	// raw is written as is to a fresh connection. Requests the server would keep the connection
	// open after ask for Connection: close, so that every exchange ends with the server's close.
	raw  func() string
	want []string
}

// TestHostileInputs sends each hostile input over a raw connection to a real listener of a
// replica running against the API server, and checks the answer row by row.
func TestHostileInputs(t *testing.T) {
	addr := startReplica(t, replicaConfig{Config: env.ManagerConfig, KeysDir: suiteKeyDir(t),
		Options: webhook.Options{ReadTimeout: hostileReadTimeout}})
	kitTS := func() string { return koogallery.FormatKitTime(time.Now()) }
	tenant := func(flag string) []byte {
		return []byte(`{"instanceId":"nope","tenantId":"T1","tenantCode":"acme","name":"Acme","flag":` + flag +
			`,"testFlag":0,"timeStamp":"` + kitTS() + `"}`)
	}
	query := []byte(`{"activity":"queryInstance","instanceId":"nope"}`)
	deep := `{"activity":"queryInstance","instanceId":"nope","n":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`

	rows := []hostileRow{
		{"a signed call, for reference", func() string { return signedPOST(query, "", "Connection: close") },
			[]string{signedReply(koogallery.ResultInstanceNotFound), closed}},
		{"oversized body: Content-Length over the 1 MiB limit, refused unread", func() string {
			return rawPOST(signedTarget(query, ""), []string{"Content-Length: " + strconv.Itoa(webhook.DefaultMaxBodyBytes+1)}, strings.Repeat("a", 1024))
		}, []string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"oversized chunked body, refused at the limit", func() string {
			return rawPOST(signedTarget(query, ""), []string{"Transfer-Encoding: chunked"}, chunked(strings.Repeat("a", webhook.DefaultMaxBodyBytes+1)))
		}, []string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"deeply nested JSON (100 000 levels), signed", func() string { return signedPOST([]byte(deep), "", "Connection: close") },
			[]string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"deeply nested JSON, unsigned", func() string {
			return rawPOST(webhook.DefaultPath+"?signature="+strings.Repeat("AB", 32)+"&timestamp="+koogallery.Timestamp(time.Now())+"&nonce=n",
				[]string{"Connection: close"}, deep)
		}, []string{signedReply(koogallery.ResultAuthFailed), closed}},
		{"1e400 as an integer field (productInfo.linearValue)", func() string {
			return signedPOST([]byte(`{"activity":"changeInstanceCheck","instanceId":"nope","productInfo":{"productId":"p","skuCode":"s","productName":"n","linearValue":1e400}}`), "", "Connection: close")
		}, []string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"1e400 where a string belongs (instanceId)", func() string {
			return signedPOST([]byte(`{"activity":"queryInstance","instanceId":1e400}`), "", "Connection: close")
		}, []string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"99999999999999999999999 as the kit flag", func() string {
			return signedKitPOST(koogallery.KitTenantSync, tenant("99999999999999999999999"))
		}, []string{signedReply(koogallery.ResultInvalidParam), closed}},
		{`"1e400" as the kit flag`, func() string { return signedKitPOST(koogallery.KitTenantSync, tenant(`"1e400"`)) },
			[]string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"99999999999999999999999 as the timestamp", func() string {
			return rawPOST(webhook.DefaultPath+"?signature="+strings.Repeat("AB", 32)+"&timestamp=99999999999999999999999&nonce=n",
				[]string{"Connection: close"}, string(query))
		}, []string{signedReply(koogallery.ResultAuthFailed), closed}},
		{"invalid UTF-8 in instanceId, signed: read as U+FFFD, not found", func() string {
			return signedPOST([]byte("{\"activity\":\"queryInstance\",\"instanceId\":\"\xff\xfe\"}"), "", "Connection: close")
		}, []string{signedReply(koogallery.ResultInstanceNotFound), closed}},
		{"invalid UTF-8 in businessId, signed", func() string {
			return signedPOST([]byte("{\"activity\":\"newInstance\",\"orderId\":\"CSX\",\"orderLineId\":\"CSX-1\",\"businessId\":\"b\xc3\x28\"}"), "", "Connection: close")
		}, []string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"invalid UTF-8 in the kit x-sign header", func() string {
			return rawPOST(koogallery.KitPathTenantSync, []string{"X-Sign: \xff\xfe", "X-Timestamp: " + koogallery.Timestamp(time.Now()), "X-Nonce: n", "Connection: close"}, string(tenant("1")))
		}, []string{signedReply(koogallery.ResultAuthFailed), closed}},
		{"invalid UTF-8 bytes in the nonce, sent raw in the query and signed", func() string {
			return signedPOST(query, "n\xff\xfe", "Connection: close")
		}, []string{signedReply(koogallery.ResultInstanceNotFound), closed}},
		{"Content-Length and Transfer-Encoding: chunked wins; the bytes after the last chunk are a request of their own, refused unsigned", func() string {
			first := chunked(string(query))
			smuggled := rawPOST(webhook.DefaultPath+"?signature="+strings.Repeat("AB", 32)+"&timestamp="+koogallery.Timestamp(time.Now())+"&nonce=n2",
				[]string{"Connection: close"}, `{"activity":"releaseInstance","instanceId":"nope"}`)
			return rawPOST(signedTarget(query, ""), []string{"Content-Length: " + strconv.Itoa(len(first)+len(smuggled)), "Transfer-Encoding: chunked"}, first+smuggled)
		}, []string{signedReply(koogallery.ResultInstanceNotFound), signedReply(koogallery.ResultAuthFailed), closed}},
		{"two different Content-Lengths", func() string {
			return rawPOST(signedTarget(query, ""), []string{"Content-Length: " + strconv.Itoa(len(query)), "Content-Length: 5", "Connection: close"}, string(query))
		}, []string{"400", closed}},
		{"two equal Content-Lengths: read once", func() string {
			n := strconv.Itoa(len(query))
			return rawPOST(signedTarget(query, ""), []string{"Content-Length: " + n, "Content-Length: " + n, "Connection: close"}, string(query))
		}, []string{signedReply(koogallery.ResultInstanceNotFound), closed}},
		{"an unknown Transfer-Encoding", func() string {
			return rawPOST(signedTarget(query, ""), []string{"Transfer-Encoding: xchunked", "Connection: close"}, string(query))
		}, []string{"501", closed}},
		{"a space before the colon of Transfer-Encoding", func() string {
			return rawPOST(signedTarget(query, ""), []string{"Transfer-Encoding : chunked", "Connection: close"}, chunked(string(query)))
		}, []string{"400", closed}},
		{"a signed kit call naming an unknown instance, for reference", func() string { return foldedKitPOST(tenant("1"), false) },
			[]string{signedReply(koogallery.ResultInstanceNotFound), closed}},
		{"obs-fold: the same call with x-sign folded over two lines is joined with a space, so no longer 64 hex", func() string {
			return foldedKitPOST(tenant("1"), true)
		}, []string{signedReply(koogallery.ResultAuthFailed), closed}},
		{"obs-fold in the first header line", func() string {
			return "POST " + signedTarget(query, "") + " HTTP/1.1\r\n Host: x\r\nConnection: close\r\n\r\n"
		}, []string{"400", closed}},
		{"the nonce twice in the query, the first one signed", func() string {
			return rawPOST(signedTarget(query, "")+"&nonce="+simulator.RandomNonce(), []string{"Connection: close"}, string(query))
		}, []string{signedReply(koogallery.ResultAuthFailed), closed}},
		{"the kit x-nonce header twice, the first one signed", func() string {
			body := tenant("1")
			h := http.Header{}
			koogallery.SetKitHeaders(h, kitKey, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
			return rawPOST(koogallery.KitPathTenantSync, []string{"X-Sign: " + h.Get(koogallery.HeaderSign), "X-Timestamp: " + h.Get(koogallery.HeaderTimestamp),
				"X-Nonce: " + h.Get(koogallery.HeaderNonce), "X-Nonce: " + simulator.RandomNonce(), "Connection: close"}, string(body))
		}, []string{signedReply(koogallery.ResultAuthFailed), closed}},
		{"keys that differ only in case (instanceId, INSTANCEID), signed", func() string {
			return signedPOST([]byte(`{"activity":"queryInstance","instanceId":"nope","INSTANCEID":"other"}`), "", "Connection: close")
		}, []string{signedReply(koogallery.ResultInvalidParam), closed}},
		{"headers over 64 KiB", func() string {
			return rawPOST(signedTarget(query, ""), []string{"X-Pad: " + strings.Repeat("a", 70<<10), "Connection: close"}, string(query))
		}, []string{"431", closed}},
		{"a NUL byte in a header value", func() string {
			return rawPOST(signedTarget(query, ""), []string{"X-Nul: a\x00b", "Connection: close"}, string(query))
		}, []string{"400", closed}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			NewWithT(t).Expect(exchange(t, addr, row.raw())).To(Equal(row.want))
		})
	}

	// Slow clients: the server must cut the connection once its read timeout has passed (never
	// before), whatever the client still trickles. Awaited with a deadline, not timed.
	t.Run("slowloris: headers trickled one byte at a time: closed, never handled", func(t *testing.T) {
		start := time.Now()
		got := slowExchange(t, addr, "POST "+signedTarget(query, "")+" HTTP/1.1\r\nHost: x\r\n", strings.Repeat("X-Slow: a\r\n", 1000))
		// net/http hangs up silently, or first answers 400 when the deadline cut a header line
		// in two (the half line reads as a malformed header).
		NewWithT(t).Expect(got).To(Or(Equal([]string{closed}), Equal([]string{"400", closed})))
		NewWithT(t).Expect(time.Since(start)).To(BeNumerically(">=", hostileReadTimeout))
	})
	t.Run("slow body trickled one byte at a time: 000002 once the read timeout passes, then closed", func(t *testing.T) {
		start := time.Now()
		head := "POST " + signedTarget(query, "") + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(query)) + "\r\n\r\n"
		got := slowExchange(t, addr, head, string(query))
		NewWithT(t).Expect(got).To(Equal([]string{signedReply(koogallery.ResultInvalidParam), closed}))
		NewWithT(t).Expect(time.Since(start)).To(BeNumerically(">=", hostileReadTimeout))
	})
}

// signedTarget is the production path with a fresh signature of body with the basic key.
func signedTarget(body []byte, nonce string) string {
	if nonce == "" {
		nonce = simulator.RandomNonce()
	}
	ts := koogallery.Timestamp(time.Now())
	return webhook.DefaultPath + "?signature=" + koogallery.SignBasic(basicKey, body, nonce, ts) + "&timestamp=" + ts + "&nonce=" + nonce
}

func signedPOST(body []byte, nonce string, headers ...string) string {
	return rawPOST(signedTarget(body, nonce), append([]string{"Content-Length: " + strconv.Itoa(len(body))}, headers...), string(body))
}

func signedKitPOST(kind koogallery.KitKind, body []byte) string {
	h := http.Header{}
	koogallery.SetKitHeaders(h, kitKey, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	return rawPOST(kind.Path(), []string{"X-Sign: " + h.Get(koogallery.HeaderSign), "X-Timestamp: " + h.Get(koogallery.HeaderTimestamp),
		"X-Nonce: " + h.Get(koogallery.HeaderNonce), "Content-Length: " + strconv.Itoa(len(body)), "Connection: close"}, string(body))
}

// foldedKitPOST is a signed tenantSync; fold splits its x-sign header over two lines (obs-fold).
func foldedKitPOST(body []byte, fold bool) string {
	ts, nonce := koogallery.Timestamp(time.Now()), simulator.RandomNonce()
	sig := koogallery.SignKit(kitKey, body, nonce, ts)
	if fold {
		sig = sig[:32] + "\r\n " + sig[32:]
	}
	return rawPOST(koogallery.KitPathTenantSync, []string{"X-Sign: " + sig, "X-Timestamp: " + ts, "X-Nonce: " + nonce, "Connection: close"}, string(body))
}

// rawPOST is one request as bytes on the wire, with exactly the given headers (plus Host; a
// Content-Length only when a header names one or the encoding).
func rawPOST(target string, headers []string, body string) string {
	var b strings.Builder
	b.WriteString("POST " + target + " HTTP/1.1\r\nHost: marketplace.example.com\r\nContent-Type: application/json;charset=utf8\r\n")
	framed := false
	for _, h := range headers {
		b.WriteString(h + "\r\n")
		l := strings.ToLower(h)
		framed = framed || strings.HasPrefix(l, "content-length") || strings.HasPrefix(l, "transfer-encoding")
	}
	if !framed {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

func chunked(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), 32<<10)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
		s = s[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// exchangeDeadline bounds one raw exchange; an answer that has not come by then is a failure.
const exchangeDeadline = 30 * time.Second

// exchange writes raw to a fresh connection and reads every response until the server closes
// it, returning the answers in the rows' notation. A KooGallery reply's Body-Sign is verified.
func exchange(t *testing.T, addr, raw string) []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(exchangeDeadline)); err != nil {
		t.Fatal(err)
	}
	// Written concurrently: the server may answer, and hang up, before it has read everything.
	go func() { _, _ = io.WriteString(conn, raw) }()
	return readAnswers(t, conn)
}

func readAnswers(t *testing.T, conn io.Reader) []string {
	t.Helper()
	var out []string
	br := bufio.NewReader(conn) // conn itself when it is a bufio.Reader already
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return append(out, endOf(t, err))
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return append(out, endOf(t, err))
		}
		out = append(out, answerOf(t, resp, body))
	}
}

// endOf names how a connection ended: the server closed it, or (a failure) it stayed open.
func endOf(t *testing.T, err error) string {
	t.Helper()
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return closed
	case errors.As(err, &ne) && ne.Timeout():
		return "still open after " + exchangeDeadline.String()
	}
	return "error: " + err.Error()
}

func answerOf(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	a := strconv.Itoa(resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		return a
	}
	if err := koogallery.VerifyBodySign([][]byte{basicKey, kitKey}, resp.Header.Get(koogallery.HeaderBodySign), body); err != nil {
		return a + " unsigned: " + err.Error()
	}
	var r koogallery.Reply
	if err := json.Unmarshal(body, &r); err != nil {
		return a + " not JSON: " + string(body)
	}
	return a + " " + r.ResultCode
}

// slowExchange writes head at once, then trickle one byte every 100 ms until the server closes
// the connection, and returns the answers.
func slowExchange(t *testing.T, addr, head, trickle string) []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(hostileReadTimeout + exchangeDeadline)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(trickle); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{trickle[i]}); err != nil {
				return
			}
		}
	}()
	return readAnswers(t, conn)
}

// signedCall is one signed basic request, kept to be replayed byte for byte.
type signedCall struct {
	target string
	body   []byte
}

func signCall(g Gomega, req koogallery.BasicRequest) signedCall {
	body, err := koogallery.MarshalRequest(req)
	g.Expect(err).NotTo(HaveOccurred())
	return signedCall{target: signedTarget(body, ""), body: body}
}

// to sends the call to the replica at addr and returns its reply (transport contract checked).
func (c signedCall) to(g Gomega, addr string) koogallery.NewInstanceReply {
	var r koogallery.NewInstanceReply
	g.Expect(json.Unmarshal(postRaw(g, "http://"+addr+c.target, nil, c.body), &r)).To(Succeed())
	return r
}

// instanceState is what a call may change on an instance: spec, the ordering annotations and
// the calls recorded.
func instanceState(g Gomega, name string) string {
	inst := getInstance(g, name)
	b, err := json.Marshal([]any{inst.Spec, inst.Annotations, recordedCalls(inst)})
	g.Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// Every replica has its own in-memory replay cache, so a signed request replayed to a second
// replica within the window passes its verifier. The protection is that every activity is
// idempotent and ordered by its signed timestamp per aspect: the second replica must answer as
// the first did, and the instance must not change (spec, annotations, history). Two replicas
// share the suite's API server; the suite's manager is the leader that reconciles.
func TestReplayedNonceAcrossReplicas(t *testing.T) {
	g := NewWithT(t)
	dir := suiteKeyDir(t)
	a := startReplica(t, replicaConfig{Config: env.ManagerConfig, KeysDir: dir})
	b := startReplica(t, replicaConfig{Config: env.ManagerConfig, KeysDir: dir})
	orderID, lineID := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	name := webhook.InstanceName(lineID)
	t.Cleanup(func() { release(name) })

	// replayed sends call to A, then the same bytes to A again (refused: A knows the nonce) and
	// to B, and returns the first reply after checking B answered alike and changed nothing.
	replayed := func(call signedCall) koogallery.NewInstanceReply {
		first := call.to(g, a)
		after := instanceState(g, name)
		g.Expect(call.to(g, a).ResultCode).To(Equal(koogallery.ResultAuthFailed), "replayed to the same replica")
		again := call.to(g, b)
		g.Expect(again.ResultCode).To(Equal(first.ResultCode), "replayed to another replica")
		g.Expect(again.InstanceID).To(Equal(first.InstanceID))
		g.Expect(instanceState(g, name)).To(Equal(after), "a replay on another replica changed the instance")
		return first
	}

	created := replayed(signCall(g, &koogallery.NewInstanceRequest{OrderID: orderID, OrderLineID: lineID, BusinessID: businessID()}))
	g.Expect(created.ResultCode).To(Equal(koogallery.ResultProcessing))
	g.Expect(created.InstanceID).NotTo(BeEmpty())
	id := created.InstanceID
	g.Expect(instancesOfOrder(g, orderID)).To(Equal(1), "one instance for the order")

	renewID, renewLine := newOrder(testenv.BasicProduct, testenv.BasicSKU)
	ok := Equal(koogallery.ResultSuccess)
	g.Expect(replayed(signCall(g, &koogallery.RefreshInstanceRequest{Scene: koogallery.SceneRenewal, OrderID: renewID, OrderLineID: renewLine,
		InstanceID: id, ExpireTime: koogallery.FormatExpireTime(time.Now().AddDate(1, 0, 0))})).ResultCode).To(ok)
	freeze := signCall(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusFreeze})
	g.Expect(freeze.to(g, a).ResultCode).To(ok)
	g.Expect(getInstance(g, name).Spec.State).To(Equal(saasv1alpha1.StateFrozen))
	g.Expect(replayed(signCall(g, &koogallery.UpdateInstanceStatusRequest{InstanceID: id, Status: koogallery.StatusUnfreeze})).ResultCode).To(ok)
	// The FREEZE replayed to B after the newer UNFREEZE: acknowledged, thaws nothing.
	before := instanceState(g, name)
	g.Expect(freeze.to(g, b).ResultCode).To(ok)
	g.Expect(instanceState(g, name)).To(Equal(before))
	g.Expect(getInstance(g, name).Spec.State).To(Equal(saasv1alpha1.StateActive))

	// Kit syncs are not ordered by timestamp; the tenant namespace records their nonces, so the
	// second replica refuses the replay outright instead of bringing a deleted tenant back.
	var ns string
	g.Eventually(func(g Gomega) {
		ns = getInstance(g, name).Status.Namespace
		g.Expect(ns).NotTo(BeEmpty())
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: ns}, &corev1.Namespace{})).To(Succeed())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	add, del := signKit(g, id, koogallery.FlagAdd), signKit(g, id, koogallery.FlagDelete)
	g.Expect(add.to(g, a)).To(Equal(koogallery.ResultSuccess))
	g.Expect(kitEntries(g, ns, "tenants")).To(HaveLen(1))
	g.Expect(del.to(g, a)).To(Equal(koogallery.ResultSuccess))
	for _, replay := range []kitCall{add, del} {
		g.Expect(replay.to(g, a)).To(Equal(koogallery.ResultAuthFailed), "kit replay to the same replica")
		g.Expect(replay.to(g, b)).To(Equal(koogallery.ResultAuthFailed), "kit replay to another replica")
	}
	g.Expect(kitEntries(g, ns, "tenants")).To(BeEmpty())

	upID, upLine := newOrder(testenv.ProProduct, testenv.ProSKU)
	// An upgrade is answered by how far the tenant got (000004 until it runs the new plan), which
	// may move between the call and its replay; the replay must still change nothing.
	upgrade := signCall(g, &koogallery.UpgradeInstanceRequest{InstanceID: id, OrderID: upID, OrderLineID: upLine})
	inFlight := BeElementOf(koogallery.ResultSuccess, koogallery.ResultProcessing)
	g.Expect(upgrade.to(g, a).ResultCode).To(inFlight)
	upgraded := instanceState(g, name)
	g.Expect(upgrade.to(g, a).ResultCode).To(Equal(koogallery.ResultAuthFailed), "replayed to the same replica")
	g.Expect(upgrade.to(g, b).ResultCode).To(inFlight, "replayed to another replica")
	g.Expect(instanceState(g, name)).To(Equal(upgraded), "a replay on another replica changed the instance")
	g.Expect(replayed(signCall(g, &koogallery.OrderNotifyRequest{OrderID: upID, OrderLineID: upLine, TestFlag: koogallery.TestFlagProduction})).ResultCode).To(ok)
	g.Expect(replayed(signCall(g, &koogallery.ReleaseInstanceRequest{InstanceID: id})).ResultCode).To(ok)
	g.Expect(getInstance(g, name).DeletionTimestamp).NotTo(BeNil())
}

// kitCall is one signed tenantSync, kept to be replayed byte for byte.
type kitCall struct {
	header http.Header
	body   []byte
}

func signKit(g Gomega, id string, flag int) kitCall {
	body, err := koogallery.MarshalKitRequest(&koogallery.TenantSyncRequest{KitCommon: kitCommon(id, false), TenantID: "T1",
		TenantCode: "acme", Name: "Acme", DomainName: "acme.example.com", Flag: koogallery.NewInt(flag)})
	g.Expect(err).NotTo(HaveOccurred())
	h := http.Header{}
	koogallery.SetKitHeaders(h, kitKey, body, simulator.RandomNonce(), koogallery.Timestamp(time.Now()))
	return kitCall{header: h, body: body}
}

func (c kitCall) to(g Gomega, addr string) string {
	var r koogallery.Reply
	g.Expect(json.Unmarshal(postRaw(g, "http://"+addr+koogallery.KitPathTenantSync, c.header, c.body), &r)).To(Succeed())
	return r.ResultCode
}
