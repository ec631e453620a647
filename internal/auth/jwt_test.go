package auth_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

func jwksFile(t *testing.T, data []byte) *auth.JWKS {
	t.Helper()
	return jwksFileTB(t, data)
}

func jwksFileTB(t testing.TB, data []byte) *auth.JWKS {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	tlstest.WriteFile(t, path, data)
	keys, err := auth.JWKSFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// unsigned makes a token with alg "none".
func unsigned(c map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	payload, _ := jsonMarshal(c)
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// hmacSigned makes an HS256 token keyed with secret, the classic confusion
// of a public key used as an HMAC secret.
func hmacSigned(t *testing.T, kid string, secret []byte, sub string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := jsonMarshal(map[string]any{"sub": sub, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()})
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBearerTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, jwt: true})
	s := h.signer
	conn := h.conn(t, "") // server-only TLS: a mesh in front terminates mTLS
	expired := validClaims("balance-dashboard")
	expired.Expiry = time.Now().Add(-time.Hour)
	skewed := validClaims("balance-dashboard")
	skewed.Expiry = time.Now().Add(-10 * time.Second) // within the leeway
	early := validClaims("balance-dashboard")
	early.NotBefore = time.Now().Add(time.Hour)
	noExp := validClaims("balance-dashboard")
	noExp.NoExpiry = true
	wrongAud := validClaims("balance-dashboard")
	wrongAud.Audience = []string{"another-service"}
	manyAud := validClaims("balance-dashboard")
	manyAud.Audience = []string{"another-service", testAudience}
	wrongIss := validClaims("balance-dashboard")
	wrongIss.Issuer = "https://idp.elsewhere.example"
	noSub := validClaims("")
	var tokens []string
	for _, tc := range []struct {
		name   string
		token  string
		raw    string // the whole authorization value, instead of a token
		code   codes.Code
		why    string
		caller string
	}{
		{name: "RS256", token: s.sign(t, "rs", validClaims("balance-dashboard")), code: codes.OK, caller: "balance-dashboard"},
		{name: "ES256", token: s.sign(t, "es256", validClaims("balance-dashboard")), code: codes.OK, caller: "balance-dashboard"},
		{name: "ES384", token: s.sign(t, "es384", validClaims("balance-dashboard")), code: codes.OK, caller: "balance-dashboard"},
		{name: "ES512", token: s.sign(t, "es512", validClaims("balance-dashboard")), code: codes.OK, caller: "balance-dashboard"},
		{name: "EdDSA", token: s.sign(t, "ed", validClaims("balance-dashboard")), code: codes.OK, caller: "balance-dashboard"},
		{name: "one of several audiences", token: s.sign(t, "es256", manyAud), code: codes.OK, caller: "balance-dashboard"},
		{name: "expired within the leeway", token: s.sign(t, "es256", skewed), code: codes.OK, caller: "balance-dashboard"},
		{name: "scheme in lower case", raw: "bearer " + s.sign(t, "es256", validClaims("balance-dashboard")), code: codes.OK, caller: "balance-dashboard"},
		{name: "wrong audience", token: s.sign(t, "es256", wrongAud), code: codes.Unauthenticated, why: "another audience"},
		{name: "expired", token: s.sign(t, "es256", expired), code: codes.Unauthenticated, why: "has expired"},
		{name: "not yet valid", token: s.sign(t, "es256", early), code: codes.Unauthenticated, why: "not valid yet"},
		{name: "no expiry", token: s.sign(t, "es256", noExp), code: codes.Unauthenticated, why: "no expiry"},
		{name: "wrong issuer", token: s.sign(t, "es256", wrongIss), code: codes.Unauthenticated, why: "another issuer"},
		{name: "unknown kid", token: s.sign(t, "unpublished", validClaims("balance-dashboard")), code: codes.Unauthenticated, why: "a key the gateway does not know"},
		{name: "no identity claim", token: s.sign(t, "es256", noSub), code: codes.Unauthenticated, why: "identity claim"},
		{name: "alg none", token: unsigned(map[string]any{"sub": "balance-dashboard", "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}), code: codes.Unauthenticated, why: "accepted algorithm"},
		{name: "HS256 keyed with a kid of the set", token: hmacSigned(t, "es256", []byte("a-shared-secret-of-enough-length!"), "balance-dashboard"), code: codes.Unauthenticated, why: "accepted algorithm"},
		{name: "signature of another key", token: swapSignature(s.sign(t, "es256", validClaims("balance-dashboard")), s.sign(t, "unpublished", validClaims("payout-worker"))), code: codes.Unauthenticated, why: "signature does not verify"},
		{name: "claims changed after signing", token: swapPayload(s.sign(t, "es256", validClaims("balance-dashboard")), validClaims("payments-auditor")), code: codes.Unauthenticated, why: "signature does not verify"},
		{name: "garbage", token: "not.a.jwt", code: codes.Unauthenticated, why: "accepted algorithm"},
		{name: "basic credentials", raw: "Basic YWxhZGRpbjpvcGVuc2VzYW1l", code: codes.Unauthenticated, why: "not a bearer token"},
		{name: "empty bearer", raw: "Bearer ", code: codes.Unauthenticated, why: "not a bearer token"},
		{name: "oversized", token: strings.Repeat("a", auth.MaxTokenBytes+1), code: codes.Unauthenticated, why: "too large"},
		{name: "valid token, identity not in the policy", token: s.sign(t, "es256", validClaims("stranger")), code: codes.Unauthenticated, why: "not known"},
	} {
		value := tc.raw
		if value == "" {
			value = "Bearer " + tc.token
		}
		tokens = append(tokens, value)
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := metadata.AppendToOutgoingContext(testContext(t), "authorization", value)
			var header metadata.MD
			err := getCashBalance(groupA)(ctx, conn, grpcHeader(&header))
			if tc.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				if got := header.Get(callerHeader); len(got) != 1 || got[0] != tc.caller {
					t.Fatalf("caller %v, want %q", got, tc.caller)
				}
				return
			}
			st := wantStatus(t, err, tc.code, "", tc.why)
			assertNoToken(t, st.Message(), value)
		})
	}
	t.Run("no token", func(t *testing.T) {
		t.Parallel()
		wantStatus(t, getCashBalance(groupA)(testContext(t), conn), codes.Unauthenticated, auth.ReasonUnauthenticated, "no bearer token")
	})
	t.Run("two tokens", func(t *testing.T) {
		t.Parallel()
		tok := s.sign(t, "es256", validClaims("balance-dashboard"))
		ctx := metadata.AppendToOutgoingContext(testContext(t), "authorization", "Bearer "+tok, "authorization", "Bearer "+tok)
		wantStatus(t, getCashBalance(groupA)(ctx, conn), codes.Unauthenticated, auth.ReasonUnauthenticated, "more than one")
	})
	t.Run("REST", func(t *testing.T) {
		t.Parallel()
		c := h.httpClient(t, "")
		url := h.restURL + "/v1/account_groups/" + groupA + "/payments/cash_balance"
		good := s.sign(t, "ed", validClaims("balance-dashboard"))
		resp, body := restGet(t, c, url, http.Header{"Authorization": {"Bearer " + good}})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Grpc-Metadata-"+callerHeader) != "balance-dashboard" {
			t.Fatalf("REST with a valid token: %d %s", resp.StatusCode, body)
		}
		bad := s.sign(t, "es256", expired)
		resp, body = restGet(t, c, url, http.Header{"Authorization": {"Bearer " + bad}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("REST with an expired token: %d %s", resp.StatusCode, body)
		}
		assertNoToken(t, body, bad)
		resp, body = restGet(t, c, h.restURL+"/whoami", http.Header{"Authorization": {"Bearer " + good}})
		if resp.StatusCode != http.StatusOK || body != "balance-dashboard bearer-token" {
			t.Fatalf("whoami with a valid token: %d %q", resp.StatusCode, body)
		}
	})
	t.Cleanup(func() {
		// Once every subtest is done: no token in any log line.
		out := h.logs.String()
		if !strings.Contains(out, "auth: call refused") {
			t.Errorf("refusals were not logged:\n%s", out)
		}
		for _, v := range tokens {
			assertNoToken(t, out, v)
		}
	})
}

// assertNoToken fails when text holds the token or any of its parts.
func assertNoToken(t *testing.T, text, authorization string) {
	t.Helper()
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(authorization, "Bearer "), "bearer "))
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) >= 12 && strings.Contains(text, part) {
			t.Fatalf("%q… of a token appears in: %s", part[:12], text)
		}
	}
}

// swapSignature puts b's signature on a's header and claims.
func swapSignature(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pa[1] + "." + pb[2]
}

// swapPayload replaces a token's claims, keeping its signature.
func swapPayload(tok string, c claims) string {
	p := strings.Split(tok, ".")
	payload, _ := jsonMarshal(map[string]any{"sub": c.Subject, "iss": c.Issuer, "aud": c.Audience, "exp": c.Expiry.Unix()})
	return p[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + p[2]
}

func TestIdentityClaim(t *testing.T) {
	t.Parallel()
	s := newTokenSigner(t)
	v, err := auth.NewJWTVerifier(jwksFile(t, s.jwks(t)), testIssuer, testAudience, auth.WithIdentityClaim("client_id"), auth.WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	c := validClaims("user-123")
	c.Extra = map[string]any{"client_id": "balance-dashboard"}
	id, err := v.Verify(context.Background(), s.sign(t, "es256", c))
	if err != nil || id != "balance-dashboard" {
		t.Fatalf("Verify = %q, %v; want the client_id claim", id, err)
	}
	c.Extra = map[string]any{"client_id": 42}
	if _, err := v.Verify(context.Background(), s.sign(t, "es256", c)); err == nil {
		t.Fatal("a numeric identity claim was accepted")
	}
	for _, tc := range []struct {
		name             string
		keys             *auth.JWKS
		issuer, audience string
	}{
		{"no keys", nil, testIssuer, testAudience},
		{"no issuer", jwksFile(t, s.jwks(t)), "", testAudience},
		{"no audience", jwksFile(t, s.jwks(t)), testIssuer, ""},
	} {
		if _, err := auth.NewJWTVerifier(tc.keys, tc.issuer, tc.audience); err == nil {
			t.Errorf("%s: NewJWTVerifier accepted it", tc.name)
		}
	}
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	} {
		got, err := auth.ParseBearer(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBearer(%q) = %q, %v", tc.in, got, err)
		}
	}
}
