package httpsig

// PEM key handling. Private keys arrive from operators in whatever form
// openssl produced: SEC1 "EC PRIVATE KEY" (often preceded by an
// "EC PARAMETERS" block), PKCS#8 "PRIVATE KEY", or SEC1 with legacy
// password-based PEM encryption. Errors describe the problem in terms of PEM
// block types and key kinds only; the underlying x509/asn1 messages are not
// passed on because their offsets and tags describe the secret's structure.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

const (
	pemECPrivateKey = "EC PRIVATE KEY"
	pemPrivateKey   = "PRIVATE KEY"
	pemPublicKey    = "PUBLIC KEY"
	pemECParameters = "EC PARAMETERS"
	// pemEncryptedPrivateKey is PKCS#8 encrypted with a passphrase, OpenSSL
	// 3's default for a protected key.
	pemEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"
)

// ParsePrivateKey parses a PEM private key for signing: SEC1
// "EC PRIVATE KEY" on P-256, P-384 or P-521, PKCS#8 "PRIVATE KEY" holding an
// ECDSA or Ed25519 key, PKCS#8 "ENCRYPTED PRIVATE KEY" (PBES2 with PBKDF2
// or scrypt and AES-CBC, as OpenSSL 3 writes), or legacy password-protected
// PEM (Proc-Type: 4,ENCRYPTED with DEK-Info). passphrase may be nil for unencrypted keys and
// is ignored for them. "EC PARAMETERS" blocks are skipped; more than one
// private key block is refused as ambiguous. Errors never include key bytes.
func ParsePrivateKey(pemBytes, passphrase []byte) (crypto.Signer, error) {
	var (
		block   *pem.Block
		skipped []string
	)
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case pemECPrivateKey, pemPrivateKey:
			if block != nil {
				return nil, errors.New("httpsig: PEM data holds more than one private key")
			}
			block = b
		case pemECParameters:
			// Emitted by "openssl ecparam -genkey"; the curve is
			// repeated inside the key itself.
		case pemEncryptedPrivateKey:
			if block != nil {
				return nil, errors.New("httpsig: PEM data holds more than one private key")
			}
			block = b
		default:
			skipped = append(skipped, b.Type)
		}
	}
	if block == nil {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("httpsig: no private key in PEM data (found %q blocks)", skipped)
		}
		return nil, errors.New("httpsig: no PEM private key block found")
	}

	der := block.Bytes
	if block.Type == pemEncryptedPrivateKey {
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		plain, err := decryptPKCS8(der, passphrase)
		if err != nil {
			return nil, err
		}
		defer clear(plain)
		key, err := parsePrivateDER(pemPrivateKey, plain)
		if err != nil {
			return nil, fmt.Errorf("%w (the decrypted key does not parse)", ErrIncorrectPassphrase)
		}
		return key, nil
	}
	// RFC 1423 PEM encryption is deprecated because it is unauthenticated
	// (padding oracles). That threat needs an attacker who can submit
	// ciphertexts to us; here we only decrypt the operator's own key file
	// once at start-up, and operators still hold keys in this form.
	//lint:ignore SA1019 reading legacy-encrypted operator keys, see above
	encrypted := x509.IsEncryptedPEMBlock(block) //nolint:staticcheck // SA1019, see above
	if encrypted {
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		var err error
		//lint:ignore SA1019 reading legacy-encrypted operator keys, see above
		der, err = x509.DecryptPEMBlock(block, passphrase) //nolint:staticcheck // SA1019, see above
		if err != nil {
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, ErrIncorrectPassphrase
			}
			return nil, errors.New("httpsig: cannot decrypt private key: unsupported or malformed DEK-Info")
		}
		defer clear(der) // the decrypted copy is ours; do not leave it on the heap
	}

	key, err := parsePrivateDER(block.Type, der)
	if err != nil {
		if encrypted {
			// RFC 1423 padding detects a wrong passphrase only most of
			// the time; garbage that fails to parse is the other case.
			return nil, fmt.Errorf("%w (the decrypted key does not parse)", ErrIncorrectPassphrase)
		}
		return nil, err
	}
	return key, nil
}

// parsePrivateDER tries the format the PEM type names first and the other
// one second, since tools mislabel keys and both are unambiguous DER.
func parsePrivateDER(pemType string, der []byte) (crypto.Signer, error) {
	if pemType == pemECPrivateKey {
		if k, err := x509.ParseECPrivateKey(der); err == nil {
			return checkPrivateKey(k)
		}
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			return checkPrivateKey(k)
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("%w: PKCS#8 key is %T; want ECDSA or Ed25519", ErrUnsupportedKey, k)
		}
	}
	if pemType != pemECPrivateKey {
		if k, err := x509.ParseECPrivateKey(der); err == nil {
			return checkPrivateKey(k)
		}
	}
	return nil, fmt.Errorf("httpsig: malformed %q PEM block: neither a SEC1 EC key nor a PKCS#8 key", pemType)
}

func checkPrivateKey(k *ecdsa.PrivateKey) (crypto.Signer, error) {
	if !supportedCurve(k.Curve) {
		return nil, fmt.Errorf("%w: ECDSA key on %s; want P-256, P-384 or P-521", ErrUnsupportedKey, k.Curve.Params().Name)
	}
	return k, nil
}

// ParsePublicKey parses a PEM "PUBLIC KEY" (PKIX) block holding an ECDSA key
// on P-256, P-384 or P-521, or an Ed25519 key. Other blocks before it, such as
// certificates, are skipped.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("httpsig: no PEM \"PUBLIC KEY\" block found")
		}
		if b.Type != pemPublicKey {
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, errors.New("httpsig: malformed PKIX public key")
		}
		if err := checkPublicKey(pub); err != nil {
			return nil, fmt.Errorf("httpsig: public key %T: %w", pub, err)
		}
		return pub, nil
	}
}

// MarshalPublicKeyPEM encodes pub as a PEM "PUBLIC KEY" (PKIX) block, the
// form in which a public key is handed to Upvest or to ParsePublicKey.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("httpsig: public key %T: %w", pub, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("httpsig: marshal public key: %w", err)
	}
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: pemPublicKey, Bytes: der}); err != nil {
		return nil, fmt.Errorf("httpsig: encode public key: %w", err)
	}
	return buf.Bytes(), nil
}
