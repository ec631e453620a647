package upvestsim_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

func TestSignatureAlgorithmsAccepted(t *testing.T) {
	for _, alg := range []string{simtest.P256, simtest.P384, simtest.P521, simtest.Ed25519} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, withKeyAlg(alg))
			r := e.post(t, "/payments/topups", topup(group1, "10.00"))
			want(t, r, http.StatusCreated)
			r = e.get(t, "/account_groups/"+group1+"/payments/topups?limit=5")
			want(t, r, http.StatusOK)
			reqs := e.sim.Requests()
			if last := reqs[len(reqs)-1]; last.KeyID != testKeyID || last.Status != http.StatusOK {
				t.Fatalf("last request recorded as key %q status %d", last.KeyID, last.Status)
			}
		})
	}
}

func TestSignatureRejected(t *testing.T) {
	e := newEnv(t)
	strangerKey := simtest.GenerateKey(t, simtest.P256)
	body := mustJSON(t, topup(group1, "10.00"))
	cases := []struct {
		name string
		opts []simtest.Option
	}{
		{"unsigned", []simtest.Option{simtest.Unsigned()}},
		{"unknown key id", []simtest.Option{simtest.SignWith(simtest.NewSigner(t, strangerKey, "nobody"))}},
		{"wrong key for the key id", []simtest.Option{simtest.SignWith(simtest.NewSigner(t, strangerKey, testKeyID))}},
		{"tampered body", []simtest.Option{simtest.Tamper(func(r *http.Request) {
			b := bytes.Replace(body, []byte("10.00"), []byte("99.00"), 1)
			r.Body = io.NopCloser(bytes.NewReader(b))
		})}},
		{"tampered path", []simtest.Option{simtest.Tamper(func(r *http.Request) { r.URL.Path = "/virtual_cash_balances/increases" })}},
		{"tampered idempotency key", []simtest.Option{simtest.Tamper(func(r *http.Request) { r.Header.Set("Idempotency-Key", newKey()) })}},
		{"idempotency key not covered", []simtest.Option{simtest.Header("Idempotency-Key", ""), simtest.Tamper(func(r *http.Request) { r.Header.Set("Idempotency-Key", newKey()) })}},
		{"query not covered", []simtest.Option{simtest.Tamper(func(r *http.Request) { r.URL.RawQuery = "limit=1" })}},
		{"signature from the past", []simtest.Option{simtest.SignWith(simtest.NewSigner(t, e.key, testKeyID, httpsig.WithClock(func() time.Time { return time.Now().Add(-time.Hour) })))}},
		{"signature version 6", []simtest.Option{simtest.SignWith(simtest.NewSigner(t, e.key, testKeyID, httpsig.WithVersion(6)))}},
		{"other client id", []simtest.Option{simtest.Header("Upvest-Client-Id", "b9cb5d7e-4a86-4d10-a7b9-8f5e7d7b0a57")}},
		{"no client id", []simtest.Option{simtest.Header("Upvest-Client-Id", "")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]simtest.Option{simtest.Token(e.tok), simtest.IdempotencyKey(newKey())}, tc.opts...)
			r := e.c.Do(t, http.MethodPost, "/payments/topups", body, opts...)
			wantProblem(t, r, http.StatusUnauthorized, "unauthorized")
		})
	}
	if n := len(e.sim.Events()); n != 0 {
		t.Fatalf("refused requests emitted %d events", n)
	}
	if got := e.sim.CashBalance(group1).Balance; got != "0" {
		t.Fatalf("refused requests moved money: balance %s", got)
	}
}

// The token request is signed too, but covers no authorization.
func TestSignatureOnTokenRequest(t *testing.T) {
	e := newEnv(t)
	r, err := e.c.Send(t.Context(), http.MethodPost, "/auth/token", e.c.TokenForm("topups:read"),
		simtest.Header("Content-Type", "application/x-www-form-urlencoded"), simtest.Unsigned())
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, r, http.StatusUnauthorized, "unauthorized", "signature")
}
