package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
	"github.com/marketplace-operator/marketplace-operator/koogallery/simulator"
)

// signInputs are the flags shared by sign and kit-sign.
type signInputs struct {
	key                 *secret
	bodyFile, nonce, ts string
}

func (a *app) signFlags(name, env, synopsis string) (*flag.FlagSet, *signInputs) {
	fs := a.flagSet(name, synopsis)
	in := &signInputs{key: a.secretFlag(fs, "key", env, "access key bound to the interface")}
	fs.StringVar(&in.bodyFile, "body-file", "", "file with the exact body bytes to sign (- for stdin)")
	fs.StringVar(&in.nonce, "nonce", "", "nonce (default: 64 random hex characters)")
	fs.StringVar(&in.ts, "timestamp", "", "timestamp in Unix milliseconds (default: now)")
	return fs, in
}

func (a *app) prepareSign(fs *flag.FlagSet, in *signInputs, args []string) (key, body []byte, err error) {
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	k, err := a.resolve(in.key)
	if err != nil {
		return nil, nil, err
	}
	body, err = a.readBody(in.bodyFile)
	if err != nil {
		return nil, nil, err
	}
	if in.nonce == "" {
		in.nonce = simulator.RandomNonce()
	}
	if in.ts == "" {
		in.ts = koogallery.Timestamp(a.now())
	}
	return []byte(k), body, nil
}

func (a *app) sign(_ context.Context, args []string) error {
	fs, in := a.signFlags("sign", "KOOSIM_KEY", "sign --key K --body-file F [--nonce N] [--timestamp MS]\n\n"+
		"Prints signature=<HEX>&timestamp=<MS>&nonce=<N>, the query string KooGallery appends to the\nproduction URL.")
	key, body, err := a.prepareSign(fs, in, args)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "signature=%s&timestamp=%s&nonce=%s\n", koogallery.SignBasic(key, body, in.nonce, in.ts), in.ts, in.nonce)
	return nil
}

func (a *app) kitSign(_ context.Context, args []string) error {
	fs, in := a.signFlags("kit-sign", "KOOSIM_KIT_KEY", "kit-sign --key K --body-file F [--nonce N] [--timestamp MS]\n\n"+
		"Prints the x-sign, x-timestamp and x-nonce headers of a kit call, one per line.")
	key, body, err := a.prepareSign(fs, in, args)
	if err != nil {
		return err
	}
	h := http.Header{}
	koogallery.SetKitHeaders(h, key, body, in.nonce, in.ts)
	fmt.Fprintf(a.stdout, "x-sign: %s\nx-timestamp: %s\nx-nonce: %s\n", h.Get(koogallery.HeaderSign), in.ts, in.nonce)
	return nil
}

func (a *app) bodySign(_ context.Context, args []string) error {
	fs := a.flagSet("body-sign", "body-sign --key K --body-file F\n\nPrints the Body-Sign header value of a reply body.")
	key := a.secretFlag(fs, "key", "KOOSIM_KEY", "access key bound to the interface")
	bodyFile := fs.String("body-file", "", "file with the exact reply body bytes (- for stdin)")
	if err := parse(fs, args); err != nil {
		return err
	}
	k, err := a.resolve(key)
	if err != nil {
		return err
	}
	body, err := a.readBody(*bodyFile)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, koogallery.BodySign([]byte(k), body))
	return nil
}

func (a *app) cryptFlags(name, synopsis string) (*flag.FlagSet, *secret, *string) {
	fs := a.flagSet(name, synopsis)
	key := a.secretFlag(fs, "key", "KOOSIM_KEY", "access key the AES key is derived from")
	t := fs.String("type", "1", "encryptType: 1 = AES-256, 2 = AES-128")
	return fs, key, t
}

func (a *app) encrypt(_ context.Context, args []string) error {
	fs, key, t := a.cryptFlags("encrypt", "encrypt --key K --type 1|2 [--iv IV] TEXT\n\nPrints iv + base64(AES-CBC(TEXT)).")
	iv := fs.String("iv", "", "16-character IV (default: random letters and digits)")
	text, k, err := a.cryptArgs(fs, key, args)
	if err != nil {
		return err
	}
	out, err := koogallery.EncryptCredential(k, koogallery.EncryptType(*t), text, *iv)
	if err != nil {
		return fmt.Errorf("encrypting: %w", err)
	}
	fmt.Fprintln(a.stdout, out)
	return nil
}

func (a *app) decrypt(_ context.Context, args []string) error {
	fs, key, t := a.cryptFlags("decrypt", "decrypt --key K --type 1|2 VALUE\n\nPrints the plaintext of an iv + base64 value.")
	text, k, err := a.cryptArgs(fs, key, args)
	if err != nil {
		return err
	}
	out, err := koogallery.DecryptCredential(k, koogallery.EncryptType(*t), text)
	if err != nil {
		return fmt.Errorf("decrypting: %w", err)
	}
	fmt.Fprintln(a.stdout, out)
	return nil
}

func (a *app) cryptArgs(fs *flag.FlagSet, key *secret, args []string) (text, k string, err error) {
	if err := parse(fs, args); err != nil {
		return "", "", err
	}
	if fs.NArg() != 1 {
		return "", "", fmt.Errorf("%w: want exactly one TEXT argument", errUsage)
	}
	k, err = a.resolve(key)
	return fs.Arg(0), k, err
}
