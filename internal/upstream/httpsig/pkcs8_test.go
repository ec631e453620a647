package httpsig

import (
	"crypto"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The keys in testdata/keys were written by OpenSSL 3 (openssl genpkey
// -aes256, openssl pkcs8 -topk8 -v2 ... / -scrypt) with the passphrase
// "correct-horse"; each .pub is its public half.
const testPassphrase = "correct-horse"

func TestEncryptedPKCS8(t *testing.T) {
	t.Parallel()
	keys, _ := filepath.Glob("testdata/keys/*.pem")
	if len(keys) == 0 {
		t.Fatal("no test keys")
	}
	for _, path := range keys {
		name := strings.TrimSuffix(filepath.Base(path), ".pem")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pemBytes, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(name, "pbes1") {
				_, err := ParsePrivateKey(pemBytes, []byte(testPassphrase))
				if err == nil || !strings.Contains(err.Error(), "not PBES2") {
					t.Fatalf("PBES1 key: %v, want a refusal naming PBES2", err)
				}
				return
			}
			key, err := ParsePrivateKey(pemBytes, []byte(testPassphrase))
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			pubPEM, err := os.ReadFile(strings.TrimSuffix(path, ".pem") + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicKey(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			if eq, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
				t.Error("the decrypted key is not the one OpenSSL wrote")
			}
			if _, err := ParsePrivateKey(pemBytes, nil); !errors.Is(err, ErrPassphraseRequired) {
				t.Errorf("no passphrase: %v, want ErrPassphraseRequired", err)
			}
			_, err = ParsePrivateKey(pemBytes, []byte("wrong-horse"))
			if !errors.Is(err, ErrIncorrectPassphrase) {
				t.Errorf("wrong passphrase: %v, want ErrIncorrectPassphrase", err)
			}
			if err != nil && strings.Contains(err.Error(), "wrong-horse") {
				t.Errorf("the error quotes the passphrase: %v", err)
			}
		})
	}
}

// FuzzDecryptPKCS8: no input panics or asks for unbounded work, and a
// success yields bytes (the caller parses them).
func FuzzDecryptPKCS8(f *testing.F) {
	keys, _ := filepath.Glob("testdata/keys/*.pem")
	for _, path := range keys {
		b, _ := os.ReadFile(path)
		if blocks := decodeAll(b); len(blocks) > 0 {
			f.Add(blocks[0], []byte(testPassphrase))
		}
	}
	f.Add([]byte{0x30, 0x00}, []byte("x"))
	f.Fuzz(func(t *testing.T, der, passphrase []byte) {
		_, _ = decryptPKCS8(der, passphrase)
	})
}

func decodeAll(b []byte) [][]byte {
	var out [][]byte
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return out
		}
		out = append(out, blk.Bytes)
	}
}
