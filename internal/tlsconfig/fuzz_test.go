package tlsconfig

import (
	"bytes"
	"testing"
)

// The PEM files are outside input. Run with e.g.
//
//	go test -run='^$' -fuzz=FuzzParseCABundle -fuzztime=10s ./internal/tlsconfig/

const seedCert = `-----BEGIN CERTIFICATE-----
MIIBcTCCARegAwIBAgIQAu0m0Ad4s6zLk3XGrwfBuzAKBggqhkjOPQQDAjAUMRIw
EAYDVQQDEwl0ZXN0IHJvb3QwHhcNMjQwMTAxMDAwMDAwWhcNMzQwMTAxMDAwMDAw
WjAUMRIwEAYDVQQDEwl0ZXN0IHJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AAQ=
-----END CERTIFICATE-----
`

// FuzzParseCABundle: never panics; a bundle loads only with at least one
// certificate; an error never quotes the input.
func FuzzParseCABundle(f *testing.F) {
	for _, s := range []string{seedCert, "", "junk", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", seedCert + seedCert} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pool, err := parseCABundle([][]byte{data})
		if err != nil {
			if len(data) >= 24 && bytes.Contains([]byte(err.Error()), data) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if pool == nil {
			t.Fatal("nil pool without an error")
		}
	})
}

// FuzzParseKeyPair: never panics, and an error never quotes the key file.
func FuzzParseKeyPair(f *testing.F) {
	f.Add([]byte(seedCert), []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte(""), []byte(""))
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		kp, err := parseKeyPair([][]byte{cert, key})
		if err != nil {
			if len(key) >= 24 && bytes.Contains([]byte(err.Error()), key) {
				t.Fatalf("error quotes the key: %v", err)
			}
			return
		}
		if kp.Leaf == nil {
			t.Fatal("a pair without its parsed leaf")
		}
	})
}
