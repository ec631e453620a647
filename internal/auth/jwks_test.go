package auth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

// idp serves a JWKS and counts the fetches.
type idp struct {
	fetches atomic.Int64
	mu      sync.Mutex
	body    []byte
	status  int
	srv     *httptest.Server
}

func newIDP(t *testing.T, body []byte) *idp {
	t.Helper()
	p := &idp{body: body, status: http.StatusOK}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(p.status)
		_, _ = w.Write(p.body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) serve(status int, body []byte) {
	p.mu.Lock()
	p.status, p.body = status, body
	p.mu.Unlock()
}

// forged is a token naming kid, with a signature no key made.
func forged(kid string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(fmt.Sprintf(`{"alg":"ES256","kid":%q}`, kid))) + "." + enc([]byte(`{"sub":"payout-worker"}`)) + "." + enc(bytes.Repeat([]byte{1}, 64))
}

func TestJWKSFromURL(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	p := newIDP(t, s.jwks(t))
	keys, err := auth.JWKSFromURL(p.srv.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p.fetches.Load() != 0 {
		t.Fatal("the JWKS was fetched before first use")
	}
	for _, kid := range []string{"es256", "rs", "ed"} {
		if id, err := v.Verify(ctx, s.sign(t, kid, validClaims("balance-dashboard"))); err != nil || id != "balance-dashboard" {
			t.Fatalf("Verify(%s) = %q, %v", kid, id, err)
		}
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for three tokens, want 1 (cached)", n)
	}
	// Tokens naming unknown keys, concurrently: a forger gets no fetch per
	// token (one per minimum interval at most, and one was just made).
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := v.Verify(ctx, forged(fmt.Sprintf("forged-%d", i))); err == nil || !strings.Contains(err.Error(), "does not know") {
				t.Errorf("forged token: %v", err)
			}
		})
	}
	wg.Wait()
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after 50 forged tokens, want still 1", n)
	}
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	p := newIDP(t, s.jwks(t))
	keys, err := auth.JWKSFromURL(p.srv.URL, auth.WithJWKSMinInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	tok := s.sign(t, "unpublished", validClaims("balance-dashboard"))
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("a token of an unpublished key verified")
	}
	// The provider publishes the new key: the first token naming it fetches.
	p.serve(http.StatusOK, s.jwksRotated(t))
	before := p.fetches.Load()
	if id, err := v.Verify(context.Background(), tok); err != nil || id != "balance-dashboard" {
		t.Fatalf("after rotation: %q, %v", id, err)
	}
	if n := p.fetches.Load() - before; n != 1 {
		t.Fatalf("%d fetches for the rotated key, want 1", n)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	p := newIDP(t, nil)
	p.serve(http.StatusServiceUnavailable, []byte("down"))
	var logs logtest.Buffer
	url := strings.Replace(p.srv.URL, "http://", "http://jwks-user:hunter2-password@", 1)
	keys, err := auth.JWKSFromURL(url, auth.WithJWKSMinInterval(0), auth.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("Refresh = %v, want the status", err)
	}
	v, _ := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	if _, err := v.Verify(context.Background(), s.sign(t, "es256", validClaims("x"))); err == nil || !strings.Contains(err.Error(), "cannot be had") {
		t.Fatalf("Verify without keys = %v", err)
	}
	// Once the provider is back, tokens verify; a later failure keeps the keys.
	p.serve(http.StatusOK, s.jwks(t))
	if _, err := v.Verify(context.Background(), s.sign(t, "es256", validClaims("x"))); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	p.serve(http.StatusOK, []byte(`{"keys":"garbage"}`))
	if err := keys.Refresh(context.Background()); err == nil {
		t.Fatal("a garbage key set was taken")
	}
	if _, err := v.Verify(context.Background(), s.sign(t, "ed", validClaims("x"))); err != nil {
		t.Fatalf("after a bad fetch, the known keys no longer verify: %v", err)
	}
	if out := logs.String(); strings.Contains(out, "hunter2-password") || !strings.Contains(out, "fetching the JWKS failed") {
		t.Fatalf("log quotes the URL's password or lacks the failure:\n%s", out)
	}
}

func TestJWKSFromURLErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://idp.bank.example/.well-known/jwks.json", true},
		{"http://127.0.0.1:8443/jwks", true},
		{"http://[::1]:8443/jwks", true},
		{"http://localhost/jwks", true},
		{"http://idp.bank.example/jwks", false},
		{"ftp://idp.bank.example/jwks", false},
		{"https:///jwks", false},
		{"::", false},
	} {
		_, err := auth.JWKSFromURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("JWKSFromURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}

func TestJWKSParse(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.jwks(t), &set); err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	with := func(extra ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: append(append([]jose.JSONWebKey(nil), set.Keys...), extra...)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	privateKey := s.keys["es256"]
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" for a set that loads
	}{
		{"published keys", s.jwks(t), ""},
		{"an encryption key is skipped", with(jose.JSONWebKey{Key: s.keys["unpublished"].Public(), KeyID: "enc", Use: "enc"}), ""},
		{"an unknown key type is skipped", withRaw(t, s.jwks(t), `{"kty":"PQC","kid":"future"}`), ""},
		{"a private key", with(jose.JSONWebKey{Key: privateKey, KeyID: "private"}), "private or symmetric"},
		{"a symmetric key", with(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct"}), "private or symmetric"},
		{"a small RSA key", with(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small"}), "1024 bits"},
		{"a repeated kid", with(jose.JSONWebKey{Key: s.keys["unpublished"].Public(), KeyID: "es256"}), "repeats the kid"},
		{"no keys member", []byte(`{}`), `no "keys"`},
		{"no usable key", []byte(`{"keys":[]}`), "no usable"},
		{"not JSON", []byte(`keys`), "not a JSON object"},
		{"a malformed EC key", []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"bad"}]}`), "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "jwks.json")
			tlstest.WriteFile(t, path, tc.data)
			_, err := auth.JWKSFromFile(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("JWKSFromFile = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestJWKSFileReload(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	tlstest.WriteFile(t, path, s.jwks(t))
	var logs logtest.Buffer
	keys, err := auth.JWKSFromFile(path, auth.WithCheckInterval(0), auth.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	tok := s.sign(t, "unpublished", validClaims("balance-dashboard"))
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Fatal("a token of an unpublished key verified")
	}
	tlstest.WriteFile(t, path, s.jwksRotated(t))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after the file gained the key: %v", err)
	}
	tlstest.WriteFile(t, path, []byte(`{"keys":[`))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after a broken file: %v (the previous keys should still verify)", err)
	}
	if out := logs.String(); !strings.Contains(out, "JWKS file reloaded") || !strings.Contains(out, "the new JWKS file does not load") {
		t.Fatalf("log:\n%s", out)
	}
}

// withRaw adds a raw JSON key to a key set.
func withRaw(t *testing.T, jwks []byte, key string) []byte {
	t.Helper()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	set.Keys = append(set.Keys, json.RawMessage(key))
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJWKSFirstUse: calls that arrive while the first fetch runs wait for
// it, rather than failing or fetching again.
func TestJWKSFirstUse(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	p := newIDP(t, s.jwks(t))
	keys, err := auth.JWKSFromURL(p.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	tok := s.sign(t, "es384", validClaims("balance-dashboard"))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Errorf("Verify during the first fetch: %v", err)
			}
		})
	}
	wg.Wait()
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// WithJWKSMaxAge: keys older than the maximum age still verify, and the
// next use fetches newer ones in the background; younger keys fetch nothing.
func TestJWKSMaxAge(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	p := newIDP(t, s.jwks(t))
	const maxAge = 200 * time.Millisecond
	keys, err := auth.JWKSFromURL(p.srv.URL, auth.WithJWKSMaxAge(maxAge), auth.WithJWKSMinInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	tok := s.sign(t, "es256", validClaims("balance-dashboard"))
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within the maximum age, want 1", n)
	}
	time.Sleep(maxAge + 50*time.Millisecond)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("keys past their maximum age: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.fetches.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("keys past their maximum age were not fetched again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WithHTTPClient: a JWKS served over TLS by a private CA is fetched with a
// client that trusts it, and not with the default one.
func TestJWKSHTTPClient(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	body := s.jwks(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	untrusted, err := auth.JWKSFromURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := untrusted.Refresh(context.Background()); err == nil {
		t.Fatal("the default client fetched from a server of an unknown CA")
	}
	trusted, err := auth.JWKSFromURL(srv.URL, auth.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if err := trusted.Refresh(context.Background()); err != nil {
		t.Fatalf("with a client that trusts the server: %v", err)
	}
}
