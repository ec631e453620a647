package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/upvest-gateway/gateway/internal/auth"
)

// Fuzz targets for the outside input this package parses. Run one with e.g.
//
//	go test -run='^$' -fuzz=FuzzParsePolicy -fuzztime=30s ./internal/auth/

// FuzzParsePolicy: never panics; every error is a *PolicyError; a policy
// that parses grants each identity it lists, and parses the same again.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		briefPolicy, testPolicy, "callers: []\n", "",
		"defaults:\n  limits: {calls_per_second: 0.5, burst: 1, streams: 1}\ncallers:\n  - identity: a\n    methods: ['*']\n",
		"callers:\n  - identity: a\n    methods: ['upvest.gateway.v1.TopupService/GetTopup']\n    account_groups: ['2596db3b-0d03-4651-9eda-970910479dfb']\n",
		"callers:\n  - &a {identity: a, methods: ['*']}\n  - *a\n",
		"callers:\n  - identity: a\n    identity: a\n",
		"callers: [{identity: a, methods: ['*'], limits: {burst: -1}}]",
		"{callers: [{identity: !!binary aGk=, methods: ['*']}]}",
		"callers:\n- identity: a\n  methods: ['*']\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := auth.ParsePolicy(data, gatewayMethods)
		if err != nil {
			var pe *auth.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *PolicyError", err, err)
			}
			return
		}
		ids := p.Identities()
		for _, id := range ids {
			g, ok := p.Grant(id)
			if !ok || g.Identity() != id {
				t.Fatalf("listed identity %q has no grant", id)
			}
			l := g.Limits()
			if l.CallsPerSecond <= 0 || l.Burst <= 0 || l.Streams <= 0 {
				t.Fatalf("identity %q has limits %+v", id, l)
			}
		}
		again, err := auth.ParsePolicy(data, gatewayMethods)
		if err != nil || strings.Join(again.Identities(), "\n") != strings.Join(ids, "\n") {
			t.Fatalf("a second parse differs: %v", err)
		}
	})
}

// FuzzBearer: an authorization value through ParseBearer and Verify never
// panics, never verifies unless it carries a token the provider signed, and
// never quotes the token in an error.
func FuzzBearer(f *testing.F) {
	s := newTokenSigner(f)
	keys := jwksFileTB(f, s.jwks(f))
	v, err := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	if err != nil {
		f.Fatal(err)
	}
	valid := s.sign(f, "es256", validClaims("balance-dashboard"))
	for _, seed := range []string{
		"Bearer " + valid,
		"Bearer " + s.sign(f, "ed", validClaims("balance-dashboard")),
		"Bearer " + s.sign(f, "unpublished", validClaims("balance-dashboard")),
		"Bearer " + unsigned(map[string]any{"sub": "x"}),
		"Bearer " + forged("es256"),
		"bearer a.b.c", "Basic abc", "Bearer", "", "Bearer ....",
		"Bearer eyJhbGciOiJFUzI1NiJ9.e30.",
	} {
		f.Add(seed)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, authorization string) {
		token, err := auth.ParseBearer(authorization)
		if err == nil {
			var id string
			id, err = v.Verify(ctx, token)
			if err == nil && id != "balance-dashboard" {
				t.Fatalf("verified a token for %q", id)
			}
		}
		if err != nil && len(authorization) >= 12 {
			for _, part := range append(strings.Split(strings.TrimSpace(authorization), "."), authorization, token) {
				if len(part) >= 12 && strings.Contains(err.Error(), part) {
					t.Fatalf("error %q quotes the input", err)
				}
			}
		}
	})
}
