package httpsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func sec1PEM(t testing.TB, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode("EC PRIVATE KEY", der)
}

func pkcs8PEM(t testing.TB, k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode("PRIVATE KEY", der)
}

// legacyEncryptedPEM produces what "openssl ec -aes256" writes: SEC1 with
// Proc-Type: 4,ENCRYPTED and DEK-Info headers.
func legacyEncryptedPEM(t testing.TB, k *ecdsa.PrivateKey, pass string, cipher x509.PEMCipher) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	// Deprecated because the format is insecure, but it is exactly the
	// legacy format operators hand us, so the fixture must use it.
	//lint:ignore SA1019 generating a legacy-encrypted fixture, see above
	block, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte(pass), cipher) //nolint:staticcheck // SA1019, see above
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestParsePrivateKey(t *testing.T) {
	type tc struct {
		name string
		pem  []byte
		pass []byte
		want crypto.Signer
	}
	var tests []tc
	for _, kc := range testKeys(t) {
		if ec, ok := kc.key.(*ecdsa.PrivateKey); ok {
			tests = append(tests,
				tc{"SEC1 " + kc.name, sec1PEM(t, ec), nil, ec},
				tc{"legacy AES-256 " + kc.name, legacyEncryptedPEM(t, ec, "correct horse", x509.PEMCipherAES256), []byte("correct horse"), ec},
				tc{"passphrase ignored for plain key " + kc.name, sec1PEM(t, ec), []byte("unused"), ec},
			)
		}
		tests = append(tests, tc{"PKCS#8 " + kc.name, pkcs8PEM(t, kc.key), nil, kc.key})
	}
	p521 := testKey(t, "P-521").(*ecdsa.PrivateKey)
	params := pemEncode("EC PARAMETERS", []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23})
	tests = append(tests,
		tc{"openssl ecparam -genkey output", append(params, sec1PEM(t, p521)...), nil, p521},
		tc{"legacy 3DES", legacyEncryptedPEM(t, p521, "pw", x509.PEMCipher3DES), []byte("pw"), p521},
		tc{"SEC1 mislabelled PRIVATE KEY", bytes.Replace(sec1PEM(t, p521), []byte("EC PRIVATE KEY"), []byte("PRIVATE KEY"), 2), nil, p521},
		tc{"leading text and certificate block skipped", append([]byte("Bag Attributes\n"+string(pemEncode("CERTIFICATE", []byte{1, 2}))), pkcs8PEM(t, p521)...), nil, p521},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrivateKey(tt.pem, tt.pass)
			if err != nil {
				t.Fatal(err)
			}
			type equaler interface{ Equal(crypto.PrivateKey) bool }
			if !got.(equaler).Equal(tt.want) {
				t.Fatal("parsed key differs from the original")
			}
		})
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	p256 := testKey(t, "P-256").(*ecdsa.PrivateKey)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	enc := legacyEncryptedPEM(t, p256, "right", x509.PEMCipherAES256)
	sec1 := sec1PEM(t, p256)
	der, _ := x509.MarshalECPrivateKey(p256)
	tests := []struct {
		name string
		pem  []byte
		pass []byte
		is   error
	}{
		{"garbage", []byte("not a key at all"), nil, nil},
		{"empty", nil, nil, nil},
		{"wrong passphrase", enc, []byte("wrong"), ErrIncorrectPassphrase},
		{"no passphrase", enc, nil, ErrPassphraseRequired},
		{"empty passphrase", enc, []byte{}, ErrPassphraseRequired},
		{"P-224", sec1PEM(t, p224), nil, ErrUnsupportedKey},
		{"RSA PKCS#8", pkcs8PEM(t, rsaKey), nil, ErrUnsupportedKey},
		{"RSA PKCS#1", pemEncode("RSA PRIVATE KEY", []byte{0x30, 0x00}), nil, nil},
		{"truncated DER", pemEncode("EC PRIVATE KEY", der[:len(der)/2]), nil, nil},
		{"two keys", append(sec1, sec1...), nil, nil},
		{"public key only", pemEncode("PUBLIC KEY", []byte{0x30, 0x00}), nil, nil},
		{"encrypted PKCS#8", pemEncode("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x00}), []byte("pw"), nil},
		{"bad DEK-Info", bytes.Replace(enc, []byte("AES-256-CBC"), []byte("ROT-13"), 1), []byte("right"), nil},
	}
	// Material that must never appear in an error message.
	secrets := []string{hex.EncodeToString(der), base64.StdEncoding.EncodeToString(der)[:40], "right", "wrong"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePrivateKey(tt.pem, tt.pass)
			if err == nil {
				t.Fatalf("ParsePrivateKey accepted it: %T", k)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error leaks secret material: %v", err)
				}
			}
		})
	}
}

// TestWrongPassphraseNeverSucceeds: RFC 1423 cannot always detect a wrong
// passphrase from the padding; the parse must catch the rest.
func TestWrongPassphraseNeverSucceeds(t *testing.T) {
	enc := legacyEncryptedPEM(t, testKey(t, "P-256").(*ecdsa.PrivateKey), "right", x509.PEMCipherAES128)
	for i := range 300 {
		if _, err := ParsePrivateKey(enc, []byte{'w', byte(i), byte(i >> 8)}); !errors.Is(err, ErrIncorrectPassphrase) {
			t.Fatalf("passphrase %d: %v", i, err)
		}
	}
}

func TestPublicKeyPEMRoundTrip(t *testing.T) {
	for _, kc := range testKeys(t) {
		t.Run(kc.name, func(t *testing.T) {
			pemBytes, err := MarshalPublicKeyPEM(kc.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PUBLIC KEY-----\n")) {
				t.Fatalf("not a PUBLIC KEY block:\n%s", pemBytes)
			}
			pub, err := ParsePublicKey(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(kc.key.Public()) {
				t.Fatal("round trip changed the key")
			}
		})
	}
}

func TestPublicKeyPEMErrors(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := MarshalPublicKeyPEM(rsaKey.Public()); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("MarshalPublicKeyPEM(RSA) = %v", err)
	}
	if _, err := MarshalPublicKeyPEM(ed25519.PublicKey{1, 2, 3}); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("MarshalPublicKeyPEM(short Ed25519) = %v", err)
	}
	der224, _ := x509.MarshalPKIXPublicKey(p224.Public())
	derRSA, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	for name, in := range map[string][]byte{
		"garbage":     []byte("garbage"),
		"P-224":       pemEncode("PUBLIC KEY", der224),
		"RSA":         pemEncode("PUBLIC KEY", derRSA),
		"bad DER":     pemEncode("PUBLIC KEY", []byte{0x30, 0x03, 0x01}),
		"private key": sec1PEM(t, testKey(t, "P-256").(*ecdsa.PrivateKey)),
	} {
		if _, err := ParsePublicKey(in); err == nil {
			t.Errorf("ParsePublicKey(%s) succeeded", name)
		}
	}
}
