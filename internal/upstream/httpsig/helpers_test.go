package httpsig

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Test fixtures are generated at run time: no private key is committed.

type keyCase struct {
	name string
	key  crypto.Signer
}

var (
	keysOnce sync.Once
	keyCases []keyCase
)

// testKeys returns one freshly generated key per supported type, shared by
// the tests of one run.
func testKeys(tb testing.TB) []keyCase {
	tb.Helper()
	keysOnce.Do(func() {
		for _, c := range []struct {
			name  string
			curve elliptic.Curve
		}{{"P-256", elliptic.P256()}, {"P-384", elliptic.P384()}, {"P-521", elliptic.P521()}} {
			k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
			if err != nil {
				panic(err)
			}
			keyCases = append(keyCases, keyCase{c.name, k})
		}
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		keyCases = append(keyCases, keyCase{"Ed25519", ed})
	})
	return keyCases
}

func testKey(tb testing.TB, name string) crypto.Signer {
	tb.Helper()
	for _, k := range testKeys(tb) {
		if k.name == name {
			return k.key
		}
	}
	tb.Fatalf("no test key %q", name)
	return nil
}

var fixedNow = time.Unix(1700000000, 0)

func fixedClock() time.Time { return fixedNow }

const (
	testClientID = "a6f3e5a4-5b0c-4c1e-9d1e-3f9a2f0c1b7d"
	testToken    = "Bearer c2VjcmV0LXRva2Vu"
	testIdemKey  = "ccb07f42-4104-44ad-8e1f-c660bb7b269c"
)

// requestShape builds one of the request shapes the gateway sends.
type requestShape struct {
	name  string
	build func(tb testing.TB) (*http.Request, []byte)
}

func newReq(tb testing.TB, method, url string, body []byte) *http.Request {
	tb.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

func getWithQuery(tb testing.TB) (*http.Request, []byte) {
	req := newReq(tb, http.MethodGet, "https://api.upvest.test/account_groups/0b8f7e1a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/payments/topups?limit=10&order=DESC&sort=created_at", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", testToken)
	req.Header.Set("Upvest-Client-Id", testClientID)
	req.Header.Set("Upvest-Api-Version", "1")
	return req, nil
}

func postWithBody(tb testing.TB) (*http.Request, []byte) {
	body := []byte(`{"reference_account_id":"3d9c1e0a-0b8f-4f3a-9a1e-5c6d7e8f9a0b","amount":"100.00","remittance_information":"withdrawal 1"}`)
	req := newReq(tb, http.MethodPost, "https://api.upvest.test/payments/withdrawals", body)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", testToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", testIdemKey)
	req.Header.Set("Upvest-Client-Id", testClientID)
	req.Header.Set("Upvest-Api-Version", "1")
	return req, body
}

func authToken(tb testing.TB) (*http.Request, []byte) {
	body := []byte("grant_type=client_credentials&client_id=" + testClientID + "&client_secret=s3cr3t&scope=payments%3Aadmin+topups%3Aread")
	req := newReq(tb, http.MethodPost, "https://api.upvest.test/auth/token", body)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Upvest-Client-Id", testClientID)
	req.Header.Set("Upvest-Api-Version", "1")
	return req, body
}

func webhookDelivery(tb testing.TB) (*http.Request, []byte) {
	body := []byte(`{"payload":[{"id":"5f1e3c2a-9b8d-4e7f-a6c5-b4d3e2f1a0b9","created_at":"2024-01-02T03:04:05Z","type":"WITHDRAWAL.CONFIRMED","object":{},"webhook_id":"1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"}]}`)
	req := newReq(tb, http.MethodPost, "https://gateway.test/webhooks/upvest", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Upvest-Client-Id", testClientID)
	return req, body
}

var shapes = []requestShape{
	{"GET with query", getWithQuery},
	{"POST with body and idempotency-key", postWithBody},
	{"POST /auth/token", authToken},
	{"webhook delivery", webhookDelivery},
}

func mustSigner(tb testing.TB, key crypto.Signer, opts ...SignerOption) *Signer {
	tb.Helper()
	opts = append([]SignerOption{WithClock(fixedClock), WithNonce(func() string { return "n0nce" })}, opts...)
	s, err := NewSigner(key, "key-1", opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func resolverFor(pub crypto.PublicKey) KeyResolver {
	return StaticKeys(map[string]crypto.PublicKey{"key-1": pub})
}
