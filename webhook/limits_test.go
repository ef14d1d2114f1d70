package webhook_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// What a caller without a key can make a replica hold, tested through the real endpoint:
// connections, idle connections, slow bodies, large bodies, and the protocols it speaks.

var queryNope = []byte(`{"activity":"queryInstance","instanceId":"nope"}`)

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// silentFor reports whether nothing arrives on conn for d, reading through br, which keeps
// whatever did arrive for readAnswers.
func silentFor(t *testing.T, conn net.Conn, br *bufio.Reader, d time.Duration) bool {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Error(err)
	}
	_, err := br.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Connections beyond the limit wait to be accepted: a request on one is answered only once an
// earlier connection closes.
func TestConnectionLimit(t *testing.T) {
	g := NewWithT(t)
	addr := startReplica(t, replicaConfig{Config: env.Config, KeysDir: suiteKeyDir(t), Options: webhook.Options{MaxConnections: 2}})
	first, second := dial(t, addr), dial(t, addr)
	// Both are served: each answers a call and stays open.
	for _, c := range []net.Conn{first, second} {
		_, err := io.WriteString(c, signedPOST(queryNope, ""))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.SetReadDeadline(time.Now().Add(exchangeDeadline))).To(Succeed())
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
	}
	third := dial(t, addr)
	_, err := io.WriteString(third, signedPOST(queryNope, "", "Connection: close"))
	g.Expect(err).NotTo(HaveOccurred())
	br := bufio.NewReader(third)
	g.Expect(silentFor(t, third, br, 500*time.Millisecond)).To(BeTrue(), "a third connection was served beyond the limit of 2")

	g.Expect(first.Close()).To(Succeed())
	g.Expect(third.SetReadDeadline(time.Now().Add(exchangeDeadline))).To(Succeed())
	g.Expect(readAnswers(t, br)).To(Equal([]string{signedReply(koogallery.ResultInstanceNotFound), closed}))
}

// A keep-alive connection is closed once it has been idle for the idle timeout.
func TestIdleConnectionsClosed(t *testing.T) {
	g := NewWithT(t)
	const idle = time.Second
	addr := startReplica(t, replicaConfig{Config: env.Config, KeysDir: suiteKeyDir(t), Options: webhook.Options{IdleTimeout: idle}})
	conn := dial(t, addr)
	_, err := io.WriteString(conn, signedPOST(queryNope, ""))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(conn.SetReadDeadline(time.Now().Add(exchangeDeadline))).To(Succeed())
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	g.Expect(err).NotTo(HaveOccurred())
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	g.Expect(resp.Close).To(BeFalse(), "the connection should be kept alive")

	start := time.Now()
	g.Expect(conn.SetReadDeadline(time.Now().Add(exchangeDeadline))).To(Succeed())
	_, err = br.ReadByte()
	g.Expect(endOf(t, err)).To(Equal(closed))
	g.Expect(time.Since(start)).To(BeNumerically(">=", idle-100*time.Millisecond))
	g.Expect(time.Since(start)).To(BeNumerically("<", idle+5*time.Second))
}

// With the default read timeout a body trickled byte by byte is cut once KooGallery (5 s) has
// given up on the call, never later.
func TestSlowBodyCutAtDefaultReadTimeout(t *testing.T) {
	g := NewWithT(t)
	addr := startReplica(t, replicaConfig{Config: env.Config, KeysDir: suiteKeyDir(t)})
	start := time.Now()
	trickled := string(queryNope) + strings.Repeat(" ", 200) // 25 s at a byte every 100 ms
	head := "POST " + signedTarget(queryNope, "") + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(trickled)) + "\r\n\r\n"
	got := slowExchange(t, addr, head, trickled)
	g.Expect(got).To(Equal([]string{signedReply(koogallery.ResultInvalidParam), closed}))
	g.Expect(time.Since(start)).To(BeNumerically(">=", webhook.DefaultReadTimeout))
	g.Expect(time.Since(start)).To(BeNumerically("<", webhook.DefaultReadTimeout+3*time.Second))
}

// Bodies over 64 KiB reserve their size from a budget before they are read; a call that finds no
// room is answered 000005 at once, its body unread.
func TestBufferedBodyBudget(t *testing.T) {
	g := NewWithT(t)
	addr := startReplica(t, replicaConfig{Config: env.Config, KeysDir: suiteKeyDir(t),
		Options: webhook.Options{MaxBufferedBodyBytes: webhook.DefaultMaxKitBodyBytes}})
	kitHead := func(n int) string {
		return "POST " + koogallery.KitPathAllOrgSync + " HTTP/1.1\r\nHost: x\r\nX-Sign: " + strings.Repeat("AB", 32) +
			"\r\nX-Timestamp: " + koogallery.Timestamp(time.Now()) + "\r\nX-Nonce: " + simulator.RandomNonce() +
			"\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n{"
	}
	// Two bodies that never arrive, of 3 and 2 MiB, do not fit in 4 MiB together: whichever call
	// starts second is answered 000005 at once, the other waits for its body.
	three, two := dial(t, addr), dial(t, addr)
	_, err := io.WriteString(three, kitHead(3<<20))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = io.WriteString(two, kitHead(2<<20))
	g.Expect(err).NotTo(HaveOccurred())
	answers := make(chan []string, 2)
	for _, c := range []net.Conn{three, two} {
		go func() {
			br := bufio.NewReader(c)
			if silentFor(t, c, br, 3*time.Second) {
				answers <- nil
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(exchangeDeadline))
			answers <- readAnswers(t, br)
		}()
	}
	g.Expect([][]string{<-answers, <-answers}).To(ConsistOf(BeNil(), Equal([]string{signedReply(koogallery.ResultInternalError), closed})))

	// Once they are gone a 2 MiB body is read, and refused for its signature.
	g.Expect(three.Close()).To(Succeed())
	g.Expect(two.Close()).To(Succeed())
	body := `"orgInfoList":"` + strings.Repeat("a", 2<<20-20) + `"}`
	g.Eventually(func() []string {
		return exchange(t, addr, kitHead(len(body)+1)+body)
	}).WithTimeout(10 * time.Second).Should(Equal([]string{signedReply(koogallery.ResultAuthFailed), closed}))
}

// With TLS the endpoint speaks HTTP/1.1 only, even to a client that offers HTTP/2.
func TestHTTP2Off(t *testing.T) {
	g := NewWithT(t)
	certFile, keyFile, pool := selfSignedCert(t)
	addr := startReplica(t, replicaConfig{Config: env.Config, KeysDir: suiteKeyDir(t),
		Options: webhook.Options{TLSCertFile: certFile, TLSKeyFile: keyFile}})
	client := &http.Client{Timeout: exchangeDeadline, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Post("https://"+addr+signedTarget(queryNope, ""), "application/json", bytes.NewReader(queryNope))
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	g.Expect(resp.Proto).To(Equal("HTTP/1.1"))
	g.Expect(resp.TLS.NegotiatedProtocol).NotTo(Equal("h2"))
	var r koogallery.Reply
	g.Expect(json.NewDecoder(resp.Body).Decode(&r)).To(Succeed())
	g.Expect(r.ResultCode).To(Equal(koogallery.ResultInstanceNotFound))
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "marketplace-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
