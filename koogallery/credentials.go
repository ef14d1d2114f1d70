package koogallery

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA1PRNG key derivation is what KooGallery's Java side does.
	"encoding/base64"
	"errors"
	"fmt"
)

// ivLength is the clear-text IV prefix of an encrypted credential: 16 ASCII letters and digits.
const ivLength = 16

const ivAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// sha1PRNG returns the first n bytes of Java's SecureRandom("SHA1PRNG") seeded with seed, which is
// how KooGallery's demo turns the access key into an AES key (KeyGenerator.init with that
// SecureRandom). State = SHA1(seed); each block is SHA1(state), and between blocks the state is
// advanced by Sun's updateState: state + output + 1 as little-endian signed bytes.
func sha1PRNG(seed []byte, n int) []byte {
	s := sha1.Sum(seed) //nolint:gosec // see above
	state := s[:]
	out := make([]byte, 0, n+sha1.Size)
	for {
		o := sha1.Sum(state) //nolint:gosec // see above
		out = append(out, o[:]...)
		if len(out) >= n {
			return out[:n]
		}
		updateState(state, o[:])
	}
}

func updateState(state, output []byte) {
	last := 1
	changed := false
	for i := range state {
		// Java adds signed bytes and keeps the low byte: the wrap-around is the algorithm.
		v := int(int8(state[i])) + int(int8(output[i])) + last //nolint:gosec // see above
		t := byte(v)                                           //nolint:gosec // see above
		changed = changed || state[i] != t
		state[i] = t
		last = v >> 8
	}
	if !changed {
		state[0]++
	}
}

// CredentialKey derives the AES key of encrypt type t from the access key (§3).
func CredentialKey(key string, t EncryptType) ([]byte, error) {
	switch t {
	case EncryptAES256, EncryptNone:
		return sha1PRNG([]byte(key), 32), nil
	case EncryptAES128:
		return sha1PRNG([]byte(key), 16), nil
	}
	return nil, paramError(KindBadValue, "encryptType must be 1 (AES-256) or 2 (AES-128)")
}

// RandomIV returns a fresh 16-character IV of ASCII letters and digits. Bytes at or above the
// largest multiple of the alphabet size are redrawn so that every character is equally likely.
func RandomIV() (string, error) {
	const limit = 256 - 256%len(ivAlphabet)
	out := make([]byte, 0, ivLength)
	var b [2 * ivLength]byte
	for len(out) < ivLength {
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("reading random IV: %w", err)
		}
		for _, c := range b {
			if int(c) < limit && len(out) < ivLength {
				out = append(out, ivAlphabet[int(c)%len(ivAlphabet)])
			}
		}
	}
	return string(out), nil
}

// EncryptCredential encrypts an appInfo credential as iv + base64(AES-CBC-PKCS5(plaintext)) with
// the key derived from the access key. An empty iv draws a random one; t empty means AES-256, the
// documented default.
func EncryptCredential(key string, t EncryptType, plaintext, iv string) (string, error) {
	if iv == "" {
		var err error
		if iv, err = RandomIV(); err != nil {
			return "", err
		}
	}
	if len(iv) != ivLength {
		return "", paramError(KindBadValue, "iv must be 16 characters")
	}
	block, err := credentialCipher(key, t)
	if err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+pad)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, []byte(iv)).CryptBlocks(buf, buf)
	return iv + base64.StdEncoding.EncodeToString(buf), nil
}

// DecryptCredential reverses EncryptCredential.
func DecryptCredential(key string, t EncryptType, value string) (string, error) {
	if len(value) <= ivLength {
		return "", newError(ResultInvalidParam, KindCrypto, "encrypted value is too short")
	}
	ct, err := base64.StdEncoding.DecodeString(value[ivLength:])
	if err != nil || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return "", newError(ResultInvalidParam, KindCrypto, "encrypted value is not base64 of whole AES blocks")
	}
	block, err := credentialCipher(key, t)
	if err != nil {
		return "", err
	}
	cipher.NewCBCDecrypter(block, []byte(value[:ivLength])).CryptBlocks(ct, ct)
	pad := int(ct[len(ct)-1])
	if pad == 0 || pad > aes.BlockSize {
		return "", newError(ResultInvalidParam, KindCrypto, "bad padding: wrong key or type")
	}
	for _, p := range ct[len(ct)-pad:] {
		if int(p) != pad {
			return "", newError(ResultInvalidParam, KindCrypto, "bad padding: wrong key or type")
		}
	}
	return string(ct[:len(ct)-pad]), nil
}

func credentialCipher(key string, t EncryptType) (cipher.Block, error) {
	k, err := CredentialKey(key, t)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("creating AES cipher: %w", err)
	}
	return block, nil
}

// oaepVariants are the OAEP parameters KooGallery may use for clientSecret. The spec says only
// "OAEP". The Java default "RSA/ECB/OAEPPadding" is SHA-1 with MGF1-SHA-1, so it is tried first
// and is what EncryptClientSecret produces; SHA-256 follows, both with MGF1-SHA-256 and with
// MGF1-SHA-1 (Java's OAEPWithSHA-256AndMGF1Padding keeps MGF1 on SHA-1).
var oaepVariants = []rsa.OAEPOptions{
	{Hash: crypto.SHA1, MGFHash: crypto.SHA1},
	{Hash: crypto.SHA256, MGFHash: crypto.SHA256},
	{Hash: crypto.SHA256, MGFHash: crypto.SHA1},
}

// DecryptClientSecret decrypts applicationSync's clientSecret: base64 of RSA-OAEP with the
// merchant's registered public key.
func DecryptClientSecret(priv *rsa.PrivateKey, b64 string) (string, error) {
	if priv == nil {
		return "", errors.New("no RSA private key configured")
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", newError(ResultInvalidParam, KindCrypto, "clientSecret is not base64")
	}
	for i := range oaepVariants {
		pt, err := priv.Decrypt(nil, ct, &oaepVariants[i])
		if err == nil {
			return string(pt), nil
		}
	}
	return "", newError(ResultInvalidParam, KindCrypto, "clientSecret does not decrypt with the configured private key")
}

// EncryptClientSecret encrypts a client secret as KooGallery does (RSA-OAEP, SHA-1, base64); the
// simulator uses it.
func EncryptClientSecret(pub *rsa.PublicKey, secret string) (string, error) {
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, []byte(secret), nil) //nolint:gosec // see oaepVariants
	if err != nil {
		return "", fmt.Errorf("encrypting client secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}
