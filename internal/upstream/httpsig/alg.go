package httpsig

// The signature algorithms. The algorithm is always chosen from the key's
// type, never from the alg parameter a peer sends, so an attacker cannot
// steer verification to a weaker scheme.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
)

// checkPublicKey returns nil when pub is a key this package signs and
// verifies with: ECDSA on P-256, P-384 or P-521 (a valid point), or Ed25519.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || !supportedCurve(k.Curve) {
			return ErrUnsupportedKey
		}
		// A hand-built key with nil coordinates makes Bytes (and
		// verification) panic; reading the deprecated fields only to
		// test for nil is the one safe way to catch it.
		//lint:ignore SA1019 nil check only, see above
		if k.X == nil || k.Y == nil { //nolint:staticcheck // SA1019, see above
			return fmt.Errorf("%w: ECDSA public key without coordinates", ErrUnsupportedKey)
		}
		if _, err := k.Bytes(); err != nil { // rejects points off the curve
			return fmt.Errorf("%w: invalid ECDSA public key", ErrUnsupportedKey)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key has wrong length", ErrUnsupportedKey)
		}
		return nil
	}
	return ErrUnsupportedKey
}

// supportedCurve compares by identity: the standard curves are singletons,
// and a look-alike implementation must not pass for one by name.
func supportedCurve(c elliptic.Curve) bool {
	return c == elliptic.P256() || c == elliptic.P384() || c == elliptic.P521()
}

// curveName is the JOSE and human name of a supported curve.
func curveName(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "P-256"
	case elliptic.P384():
		return "P-384"
	case elliptic.P521():
		return "P-521"
	}
	return ""
}

// signBase signs the base with key: ECDSA over SHA-512(base) whatever the
// curve (ASN.1 DER, as crypto.Signer implementations return), Ed25519 over
// the raw base. key may be any crypto.Signer, e.g. one backed by a KMS.
func signBase(key crypto.Signer, base []byte) ([]byte, error) {
	switch key.Public().(type) {
	case *ecdsa.PublicKey:
		sum := sha512.Sum512(base)
		return key.Sign(rand.Reader, sum[:], crypto.SHA512)
	case ed25519.PublicKey:
		return key.Sign(rand.Reader, base, crypto.Hash(0))
	}
	return nil, ErrUnsupportedKey
}

// selfTest signs and verifies a fixed message, so that a private key that
// does not match its public half (a misconfigured KMS signer, a corrupt key)
// fails at start-up rather than as a 401 on every call. A panic from a
// malformed key is turned into an error.
func selfTest(key crypto.Signer) (err error) {
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("%w: signing with the key panicked", ErrUnsupportedKey)
		}
	}()
	msg := []byte("httpsig self-test")
	sig, err := signBase(key, msg)
	if err != nil {
		return err
	}
	if !verifyBase(key.Public(), msg, sig) {
		return errors.New("httpsig: the signing key does not match its public key")
	}
	return nil
}

// verifyBase reports whether sig is a valid signature of base under pub,
// which checkPublicKey has accepted.
func verifyBase(pub crypto.PublicKey, base, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha512.Sum512(base)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k, base, sig)
	}
	return false
}
