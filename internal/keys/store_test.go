package keys_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	. "github.com/onsi/gomega"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marketplace-operator/marketplace-operator/internal/keys"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func base() map[string]string {
	return map[string]string{"basic": "basic-key\n", "kit": "kit-key\r\n", "ak": "AK1", "sk": "SK1\n"}
}

func TestLoadTrimsAndOrders(t *testing.T) {
	dir := t.TempDir()
	files := base()
	files["basic.previous"] = "old-basic\n"
	write(t, dir, files)
	s, err := keys.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Basic(); len(got) != 2 || string(got[0]) != "basic-key" || string(got[1]) != "old-basic" {
		t.Errorf("basic keys %q", got)
	}
	if got := s.Kit(); len(got) != 1 || string(got[0]) != "kit-key" {
		t.Errorf("kit keys %q", got)
	}
	if ak, sk := s.OpenAPICredentials(); ak != "AK1" || sk != "SK1" {
		t.Errorf("credentials %q %q", ak, sk)
	}
	if s.KitRSAKey() != nil {
		t.Error("no RSA key was configured")
	}
	if s.NeedLeaderElection() {
		t.Error("every replica needs the keys")
	}
}

func TestMissingFilesNamed(t *testing.T) {
	for _, missing := range []string{"basic", "kit", "ak", "sk"} {
		dir := t.TempDir()
		files := base()
		delete(files, missing)
		write(t, dir, files)
		_, err := keys.NewStore(dir)
		if err == nil || !strings.Contains(err.Error(), `"`+missing+`"`) {
			t.Errorf("missing %s: error %v does not name it", missing, err)
		}
		for _, content := range base() {
			if err != nil && strings.Contains(err.Error(), strings.TrimSpace(content)) {
				t.Errorf("error %q leaks a key", err)
			}
		}
	}
	dir := t.TempDir()
	files := base()
	files["basic"] = "\n"
	write(t, dir, files)
	if _, err := keys.NewStore(dir); err == nil || !strings.Contains(err.Error(), `"basic"`) {
		t.Errorf("empty basic: %v", err)
	}
}

func rsaPEM(t *testing.T, pkcs8 bool) (string, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if pkcs8 {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})), k
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})), k
}

func TestRSAKey(t *testing.T) {
	for _, pkcs8 := range []bool{false, true} {
		dir := t.TempDir()
		files := base()
		p, k := rsaPEM(t, pkcs8)
		files["kit-rsa.pem"] = p
		write(t, dir, files)
		s, err := keys.NewStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.KitRSAKey(); got == nil || !got.Equal(k) {
			t.Errorf("pkcs8=%v: RSA key not loaded", pkcs8)
		}
	}
	dir := t.TempDir()
	files := base()
	files["kit-rsa.pem"] = "not a key"
	write(t, dir, files)
	if _, err := keys.NewStore(dir); err == nil || !strings.Contains(err.Error(), "kit-rsa.pem") {
		t.Errorf("bad RSA key: %v", err)
	}
}

// mountSecret lays out dir the way the kubelet mounts a Secret: the files are symlinks through
// ..data, itself a symlink to a timestamped directory that is swapped atomically on update.
func mountSecret(t *testing.T, dir, version string, files map[string]string) {
	t.Helper()
	data := filepath.Join(dir, "..2026_"+version)
	write(t, data, files)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReloadOnSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mountSecret(t, dir, "01", base())
	s, err := keys.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPollInterval(10 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	rotated := base()
	rotated["basic"] = "new-basic"
	rotated["basic.previous"] = "basic-key"
	rotated["sk"] = "SK2"
	mountSecret(t, dir, "02", rotated)
	// basic.previous is new in this version: the kubelet adds its symlink too.
	NewWithT(t).Eventually(func(g Gomega) {
		b := s.Basic()
		_, sk := s.OpenAPICredentials()
		g.Expect(b).To(HaveLen(2), "keys not reloaded")
		g.Expect(string(b[0])).To(Equal("new-basic"))
		g.Expect(string(b[1])).To(Equal("basic-key"))
		g.Expect(sk).To(Equal("SK2"))
	}).WithTimeout(5 * time.Second).WithPolling(10 * time.Millisecond).Should(Succeed())
}

func TestFailedReloadKeepsKeys(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, base())
	s, err := keys.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "kit")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil {
		t.Fatal("reload without kit should fail")
	}
	if string(s.Kit()[0]) != "kit-key" {
		t.Error("a failed reload must keep the previous keys")
	}
	changed, err := s.Reload()
	if err == nil || changed {
		t.Errorf("changed=%v err=%v", changed, err)
	}
	write(t, dir, base())
	if changed, err := s.Reload(); err != nil || changed {
		t.Errorf("same content: changed=%v err=%v", changed, err)
	}
}
