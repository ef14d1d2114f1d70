package webhook

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// certReloader serves the endpoint's certificate from its files and picks up a rotated one
// without a restart: the kubelet updates a mounted Secret in place (cert-manager renewals), and
// the first handshake after that gets the new pair. The files are stat'ed on each handshake, a
// few microseconds against the handshake's milliseconds. A pair that does not load (a rotation
// caught half-written) leaves the previous one served, and is tried again on the next handshake.
type certReloader struct {
	certFile, keyFile string
	log               logr.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
}

// newCertReloader loads the pair once: a certificate that does not load at start-up is an
// error, not something to serve around.
func newCertReloader(certFile, keyFile string, log logr.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.reload(); err != nil {
		c.log.Error(err, "the rotated marketplace TLS certificate does not load; serving the previous one")
	}
	return c.cert, nil
}

// reload loads the pair when either file changed since the last load. Called with mu held (or
// before the reloader is shared).
func (c *certReloader) reload() error {
	certMod, err := modTime(c.certFile)
	if err != nil {
		return err
	}
	keyMod, err := modTime(c.keyFile)
	if err != nil {
		return err
	}
	if c.cert != nil && certMod.Equal(c.certMod) && keyMod.Equal(c.keyMod) {
		return nil
	}
	// The error names the files, never their content.
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading the marketplace TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if c.cert != nil {
		c.log.Info("marketplace TLS certificate reloaded", "certFile", c.certFile)
	}
	c.cert, c.certMod, c.keyMod = &pair, certMod, keyMod
	return nil
}

func modTime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the marketplace TLS file: %w", err)
	}
	return fi.ModTime(), nil
}
