package auth_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

// A remembered token serves only as long as verifying it again would
// succeed: these fail if the cache outlives a token's expiry or its key.

func TestRememberedTokenExpires(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	v, err := auth.NewJWTVerifier(jwksFile(t, s.jwks(t)), testIssuer, testAudience, auth.WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	c := validClaims("balance-dashboard")
	c.Expiry = time.Now().Add(time.Second) // exp has whole seconds: 0–1 s from now
	tok := s.sign(t, "es256", c)
	for range 2 { // verified, then remembered
		if id, err := v.Verify(context.Background(), tok); err != nil || id != "balance-dashboard" {
			t.Fatalf("before expiry: %q, %v", id, err)
		}
	}
	time.Sleep(time.Until(c.Expiry.Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	if _, err := v.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "has expired") {
		t.Fatalf("a remembered token past its expiry: %v, want expired", err)
	}
}

func TestRememberedTokenEndsWithItsKey(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	tlstest.WriteFile(t, path, s.jwks(t))
	keys, err := auth.JWKSFromFile(path, auth.WithCheckInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	tok := s.sign(t, "es256", validClaims("balance-dashboard"))
	verify := func() error {
		t.Helper()
		_, err := v.Verify(context.Background(), tok)
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}

	// The same key in a reloaded set verifies the token again.
	tlstest.WriteFile(t, path, s.jwksRotated(t))
	if err := verify(); err != nil {
		t.Fatalf("key set reloaded with the key: %v", err)
	}
	// The kid names another key now: the token's signature is not its.
	other := newTokenSigner(t)
	tlstest.WriteFile(t, path, other.jwks(t))
	if err := verify(); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("kid bound to another key: %v, want a signature error", err)
	}
	// The key is gone from the set.
	tlstest.WriteFile(t, path, s.jwks(t))
	if err := verify(); err != nil {
		t.Fatalf("key back: %v", err)
	}
	tlstest.WriteFile(t, path, jwksWithout(t, s, "es256"))
	if err := verify(); err == nil || !strings.Contains(err.Error(), "does not know") {
		t.Fatalf("key removed: %v, want an unknown key", err)
	}
}

// TestRememberedTokenIsThatToken: a token that differs from a remembered one
// in its claims or its signature is verified, and refused.
func TestRememberedTokenIsThatToken(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	v, err := auth.NewJWTVerifier(jwksFile(t, s.jwks(t)), testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	tok := s.sign(t, "es256", validClaims("balance-dashboard"))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	for name, forged := range map[string]string{
		"claims changed":    swapPayload(tok, validClaims("payments-auditor")),
		"another signature": swapSignature(tok, s.sign(t, "es256", validClaims("payments-auditor"))),
		"one more byte":     tok + "A",
	} {
		if id, err := v.Verify(context.Background(), forged); err == nil {
			t.Errorf("%s: verified as %q", name, id)
		}
	}
	// And another caller's genuine token is that caller.
	if id, err := v.Verify(context.Background(), s.sign(t, "es256", validClaims("payments-auditor"))); err != nil || id != "payments-auditor" {
		t.Fatalf("second caller: %q, %v", id, err)
	}
}

// jwksWithout is the published key set less the key kid.
func jwksWithout(t *testing.T, s *tokenSigner, kid string) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.jwks(t), &set); err != nil {
		t.Fatal(err)
	}
	set.Keys = slices.DeleteFunc(set.Keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
