package render

import (
	"errors"
	"fmt"
	"io"
)

// PasswordLength is the length of a generated admin password: about 145 bits of entropy from
// the alphabet below, and within the limits of common web-app login forms.
const PasswordLength = 24

// Character classes of a generated password. Every class is guaranteed because many apps
// enforce a complexity policy on the initial account. The symbols are all legal unescaped in a
// URL's user info and contain no quote, backslash, '$' or '`', so the password survives being
// pasted into a connection string, an env file or a shell.
const (
	upperChars  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowerChars  = "abcdefghijklmnopqrstuvwxyz"
	digitChars  = "0123456789"
	symbolChars = "!*+-.=_~"
	allChars    = upperChars + lowerChars + digitChars + symbolChars
)

// maxDraws bounds rejection sampling. A real random source is rejected at most about a quarter
// of the time per byte, so hitting this means the reader is broken (for example a constant
// stream), and an error beats looping forever.
const maxDraws = 64

// errBrokenRandomness says the random source keeps producing unusable bytes.
var errBrokenRandomness = errors.New("random source keeps returning unusable bytes")

// GeneratePassword returns a PasswordLength-character password with at least one upper-case
// letter, lower-case letter, digit and symbol. The randomness comes from r (crypto/rand.Reader
// in production) so that tests can pass a fixed stream and get a fixed password. The error
// never contains password material.
func GeneratePassword(r io.Reader) (string, error) {
	classes := []string{upperChars, lowerChars, digitChars, symbolChars}
	password := make([]byte, PasswordLength)
	for i := range password {
		alphabet := allChars
		if i < len(classes) {
			alphabet = classes[i]
		}
		j, err := randomIndex(r, len(alphabet))
		if err != nil {
			return "", fmt.Errorf("generating password: %w", err)
		}
		password[i] = alphabet[j]
	}
	// Shuffle, or the guaranteed classes would always sit in the first four positions.
	for i := len(password) - 1; i > 0; i-- {
		j, err := randomIndex(r, i+1)
		if err != nil {
			return "", fmt.Errorf("generating password: %w", err)
		}
		password[i], password[j] = password[j], password[i]
	}
	return string(password), nil
}

// randomIndex returns a uniform integer in [0, n) for 0 < n <= 256. Bytes from the top partial
// range are rejected because taking them modulo n would favour small indexes.
func randomIndex(r io.Reader, n int) (int, error) {
	limit := 256 - 256%n
	var b [1]byte
	for range maxDraws {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("reading random bytes: %w", err)
		}
		if int(b[0]) < limit {
			return int(b[0]) % n, nil
		}
	}
	return 0, errBrokenRandomness
}
