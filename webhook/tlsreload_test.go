package webhook_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/marketplace-operator/marketplace-operator/webhook"
)

// A rotated certificate (the kubelet rewriting a mounted TLS Secret) is served from the next
// handshake on, without a restart.
func TestTLSCertificateRotates(t *testing.T) {
	g := NewWithT(t)
	certFile, keyFile, oldPool := selfSignedCert(t)
	addr := startReplica(t, replicaConfig{Config: env.Config, KeysDir: suiteKeyDir(t),
		Options: webhook.Options{TLSCertFile: certFile, TLSKeyFile: keyFile}})
	handshake := func(pool *x509.CertPool) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: exchangeDeadline}, "tcp", addr,
			&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err == nil {
			_ = conn.Close()
		}
		return err
	}
	newCert, newKey, newPool := selfSignedCert(t)
	g.Expect(handshake(oldPool)).To(Succeed())
	g.Expect(handshake(newPool)).NotTo(Succeed())

	for src, dst := range map[string]string{newKey: keyFile, newCert: certFile} {
		b, err := os.ReadFile(src)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(os.WriteFile(dst+".new", b, 0o600)).To(Succeed())
		g.Expect(os.Rename(dst+".new", dst)).To(Succeed())
	}
	g.Eventually(func() error { return handshake(newPool) }).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(handshake(oldPool)).NotTo(Succeed(), "the old certificate is no longer served")
}
