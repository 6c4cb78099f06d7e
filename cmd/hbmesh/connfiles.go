package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// The connection's files are read once before dialling and checked for
// what nats.go will want of them, so that a file of the wrong kind (a
// seed given as --creds, a key as --tlscert) is a usage error naming its
// flag or variable, with exit 2, rather than a connect failure that
// systemd retries forever. The messages name the file by its path and
// say what it lacks; they never quote its contents, which may be a
// secret. The files are read again when the connection is made.

// checkConnFile checks that the file at path, the value of connection
// flag name (creds, nkey, tlsca), holds what that flag wants. flag names
// it for the message, as connFlags.source does.
func checkConnFile(name, flag, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return pathUsage(flag, path, err)
	}
	var why string
	switch name {
	case "creds":
		why = credsProblem(b)
	case "nkey":
		if kp, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
			why = "holds no user nkey seed (a line starting SU, as `nk -gen user` writes)"
		} else {
			kp.Wipe()
		}
	case "tlsca":
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			why = "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
		}
	}
	if why != "" {
		return usagef("%s %s: %s", flag, quotePath(path), why)
	}
	return nil
}

// credsProblem says what keeps b from being a user credentials file, as
// `nats auth user credential` and `nsc generate creds` write: a user JWT
// and the seed of that user; "" if nothing does.
func credsProblem(b []byte) string {
	token, _ := nkeys.ParseDecoratedJWT(b) // b itself when it has no JWT block
	claims, err := jwt.DecodeUserClaims(strings.TrimSpace(token))
	if err != nil {
		return "not a credentials file: it holds no user JWT (-----BEGIN NATS USER JWT-----)"
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return "not a credentials file: it holds no user seed (-----BEGIN USER NKEY SEED-----)"
	}
	defer kp.Wipe()
	if pub, err := kp.PublicKey(); err != nil || pub != claims.Subject {
		return "its seed is not the key of its JWT's user"
	}
	return ""
}

// checkCertKey checks that certPath and keyPath, named certFlag and
// keyFlag, hold a PEM certificate and its private key.
func checkCertKey(certFlag, certPath, keyFlag, keyPath string) error {
	cert, err := os.ReadFile(certPath)
	if err != nil {
		return pathUsage(certFlag, certPath, err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return pathUsage(keyFlag, keyPath, err)
	}
	if !hasPEM(cert, func(typ string) bool { return typ == "CERTIFICATE" }) {
		return usagef("%s %s: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", certFlag, quotePath(certPath))
	}
	if !hasPEM(key, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		return usagef("%s %s: holds no PEM private key (-----BEGIN PRIVATE KEY-----)", keyFlag, quotePath(keyPath))
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		// crypto/tls's errors name PEM block types, never their bytes.
		return usagef("%s %s and %s %s: not a certificate and its key: %v", certFlag, quotePath(certPath), keyFlag, quotePath(keyPath), err)
	}
	return nil
}

// hasPEM reports whether b holds a PEM block of a type that want accepts.
func hasPEM(b []byte, want func(typ string) bool) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if want(block.Type) {
			return true
		}
	}
}
