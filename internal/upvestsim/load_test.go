package upvestsim_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// With VerifyOneIn, one request in n has its signature checked (the first
// of all, the token request, included); the others must still name a
// registered key, with version 15, and carry a token.
func TestVerifyOneIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *upvestsim.Config) { c.VerifyOneIn = 3 })) // request 1: the token
	forged := simtest.SignWith(simtest.NewSigner(t, simtest.GenerateKey(t, simtest.P256), testKeyID))
	var refused []int
	for i := 2; i <= 7; i++ {
		if r := e.get(t, "/account_groups/"+group1+"/payments/cash_balance", forged); r.Status == http.StatusUnauthorized {
			refused = append(refused, i)
		} else {
			want(t, r, http.StatusOK)
		}
	}
	if len(refused) != 2 || refused[0] != 4 || refused[1] != 7 {
		t.Fatalf("forged signatures refused on requests %v, want 4 and 7 (one in 3)", refused)
	}

	for _, tc := range []struct {
		name string
		opts []simtest.Option
	}{
		{"unsigned", []simtest.Option{simtest.Unsigned()}},
		{"unknown key id", []simtest.Option{simtest.SignWith(simtest.NewSigner(t, simtest.GenerateKey(t, simtest.P256), "nobody"))}},
		{"version 6", []simtest.Option{simtest.SignWith(simtest.NewSigner(t, e.key, testKeyID, httpsig.WithVersion(6)))}},
		{"no token", []simtest.Option{simtest.Header("Authorization", "")}},
	} {
		for range 3 { // whichever of them is the one checked
			r := e.get(t, "/account_groups/"+group1+"/payments/cash_balance", tc.opts...)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("%s: status %d, want 401: %s", tc.name, r.Status, r.Body)
			}
		}
	}
}

func TestVerifyKeysPublished(t *testing.T) {
	t.Parallel()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withConfig(func(c *upvestsim.Config) { c.VerifyKeys = map[string]crypto.PublicKey{"load-generator": pub} }))
	r := e.get(t, "/auth/verify_keys", simtest.Token(e.c.MustToken(t, "webhooks:read")))
	want(t, r, http.StatusOK)
	keys, err := httpsig.ParseJWKS(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[e.sim.WebhookKeyID()] == nil {
		t.Fatalf("verify keys %v: want the simulator's and the load generator's", keys)
	}
	if k, ok := keys["load-generator"].(ed25519.PublicKey); !ok || !k.Equal(pub) {
		t.Fatalf("verify key load-generator = %v, want %v", keys["load-generator"], pub)
	}

	if _, err := upvestsim.New(upvestsim.Config{ClientID: testClientID, ClientSecret: testSecret,
		TenantKeys: map[string]crypto.PublicKey{testKeyID: pub}, VerifyKeys: map[string]crypto.PublicKey{"rsa": "not a key"}}); err == nil {
		t.Fatal("New accepted an unsupported verify key")
	}
}

func TestMaxRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *upvestsim.Config) { c.MaxRecords = 4 }))
	for range 9 {
		want(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance"), http.StatusOK)
	}
	reqs := e.sim.Requests()
	if len(reqs) == 0 || len(reqs) > 4 {
		t.Fatalf("%d request records kept, want 1 to 4", len(reqs))
	}
	if last := reqs[len(reqs)-1]; last.Path != "/account_groups/"+group1+"/payments/cash_balance" {
		t.Fatalf("last record %s %s, want the latest request", last.Method, last.Path)
	}
}
