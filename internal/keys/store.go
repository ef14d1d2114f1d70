package keys

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// File names in the keys directory.
const (
	// FileBasic is the key bound to the basic interfaces (newInstance…); it also signs replies.
	FileBasic = "basic"
	// FileBasicPrevious is the basic key being rotated out; requests signed with it still pass.
	FileBasicPrevious = "basic.previous"
	// FileKit is the key bound to the joint-operation kit sync interfaces.
	FileKit = "kit"
	// FileKitPrevious is the kit key being rotated out.
	FileKitPrevious = "kit.previous"
	// FileAK and FileSK are the seller account's Open API access key pair (Query Order).
	FileAK = "ak"
	FileSK = "sk"
	// FileKitRSA is the optional PEM RSA private key (PKCS#1 or PKCS#8) whose public half was
	// registered with KooGallery for applicationSync client secrets.
	FileKitRSA = "kit-rsa.pem"
)

// DefaultPollInterval is how often the directory is re-read. A mounted Secret is updated by the
// kubelet within about a minute of the change, so a few seconds adds little to that.
const DefaultPollInterval = 5 * time.Second

// required are the files without which the webhook cannot verify or resolve anything.
var required = []string{FileBasic, FileKit, FileAK, FileSK}

// set is one consistent load of the directory.
type set struct {
	basic, kit [][]byte
	ak, sk     string
	rsa        *rsa.PrivateKey
	// digest identifies the raw contents, so an unchanged directory is not re-parsed.
	digest [sha256.Size]byte
}

// Store holds the current keys and reloads them when the directory changes. It is safe for
// concurrent use; readers never block.
type Store struct {
	dir      string
	interval time.Duration
	cur      atomic.Pointer[set]
}

// NewStore loads dir and fails, naming the file, when a required file is missing or empty or the
// RSA key does not parse.
func NewStore(dir string) (*Store, error) {
	s := &Store{dir: dir, interval: DefaultPollInterval}
	st, err := load(dir)
	if err != nil {
		return nil, err
	}
	s.cur.Store(st)
	observeLoad(time.Now(), false, nil)
	return s, nil
}

// SetPollInterval changes the reload interval (tests use milliseconds); call it before Start.
func (s *Store) SetPollInterval(d time.Duration) {
	if d > 0 {
		s.interval = d
	}
}

// Start re-reads the directory every poll interval until ctx ends. Polling the contents, rather
// than watching inotify events, works the same for a plain directory and for a mounted Secret,
// where the kubelet swaps a symlink (..data) instead of writing the files. A failed reload keeps
// the previous keys: a half-written directory must not take the webhook down.
func (s *Store) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("keys")
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			changed, err := s.Reload()
			if err != nil {
				log.Error(err, "reloading marketplace keys; keeping the previous ones")
			} else if changed {
				log.Info("marketplace keys reloaded")
			}
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica needs keys.
func (s *Store) NeedLeaderElection() bool { return false }

// Reload reads the directory now and reports whether the keys changed.
func (s *Store) Reload() (bool, error) {
	changed, err := s.reload()
	observeLoad(time.Now(), changed, err)
	return changed, err
}

func (s *Store) reload() (bool, error) {
	st, err := load(s.dir)
	if err != nil {
		return false, err
	}
	if old := s.cur.Load(); old != nil && old.digest == st.digest {
		return false, nil
	}
	s.cur.Store(st)
	return true, nil
}

// Basic returns the basic-interface keys, current first, then the previous one during rotation.
// It has the shape of koogallery.KeyFunc.
func (s *Store) Basic() [][]byte { return s.cur.Load().basic }

// Kit returns the kit keys, current first, then the previous one during rotation.
func (s *Store) Kit() [][]byte { return s.cur.Load().kit }

// OpenAPICredentials returns the Open API AK/SK; it has the shape of openapi.Config.Credentials.
func (s *Store) OpenAPICredentials() (ak, sk string) {
	st := s.cur.Load()
	return st.ak, st.sk
}

// KitRSAKey returns the RSA private key for kit client secrets, or nil when none is configured.
func (s *Store) KitRSAKey() *rsa.PrivateKey { return s.cur.Load().rsa }

func load(dir string) (*set, error) {
	files := map[string][]byte{}
	h := sha256.New()
	for _, name := range []string{FileBasic, FileBasicPrevious, FileKit, FileKitPrevious, FileAK, FileSK, FileKitRSA} {
		b, err := readFile(dir, name)
		if err != nil {
			return nil, err
		}
		files[name] = b
		// Length-prefixing keeps "ab"+"c" and "a"+"bc" apart.
		fmt.Fprintf(h, "%s:%d:", name, len(b))
		h.Write(b)
	}
	for _, name := range required {
		if len(files[name]) == 0 {
			return nil, fmt.Errorf("keys directory %s: file %q is missing or empty", dir, name)
		}
	}
	st := &set{
		basic: keyList(files[FileBasic], files[FileBasicPrevious]),
		kit:   keyList(files[FileKit], files[FileKitPrevious]),
		ak:    string(files[FileAK]),
		sk:    string(files[FileSK]),
	}
	copy(st.digest[:], h.Sum(nil))
	if pemBytes := files[FileKitRSA]; len(pemBytes) > 0 {
		k, err := parseRSA(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("keys directory %s: file %q: %w", dir, FileKitRSA, err)
		}
		st.rsa = k
	}
	return st, nil
}

// readFile returns the file's content without its trailing newline, or nil when it does not
// exist. Errors name the file, never its content.
func readFile(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, name)) //nolint:gosec // dir is the operator's own flag; name is one of the fixed file names
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading key file %q: %w", name, err)
	}
	// Secrets created with `echo` or an editor end with a newline that is not part of the key.
	return bytes.TrimRight(b, "\r\n"), nil
}

func keyList(current, previous []byte) [][]byte {
	ks := [][]byte{current}
	if len(previous) > 0 && !bytes.Equal(previous, current) {
		ks = append(ks, previous)
	}
	return ks
}

func parseRSA(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS#1 or PKCS#8 private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the private key is not an RSA key")
	}
	return rk, nil
}
