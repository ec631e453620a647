package upvestsim_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

func TestTokenFlow(t *testing.T) {
	e := newEnv(t)
	r, err := e.c.FetchToken(t.Context(), "topups:read", "positions:read")
	if err != nil {
		t.Fatal(err)
	}
	want(t, r, http.StatusOK)
	tok := object(t, r)
	if tok["token_type"] != "bearer" || tok["expires_in"] != float64(1799) || tok["scope"] != "topups:read positions:read" || tok["access_token"] == "" {
		t.Fatalf("token answer %s", r.Body)
	}
	access := tok["access_token"].(string)
	want(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance", simtest.Token(access)), http.StatusOK)
	if n := e.sim.TokenRequests(); n != 2 { // newEnv fetched one
		t.Fatalf("TokenRequests = %d, want 2", n)
	}
}

func TestTokenRefused(t *testing.T) {
	e := newEnv(t)
	form := func(mod func(url.Values)) []byte {
		v, _ := url.ParseQuery(string(e.c.TokenForm("topups:read")))
		mod(v)
		return []byte(v.Encode())
	}
	cases := []struct {
		name   string
		body   []byte
		ct     string
		status int
		word   string
	}{
		{"unknown client", form(func(v url.Values) { v.Set("client_id", "b9cb5d7e-4a86-4d10-a7b9-8f5e7d7b0a57") }), "", 401, "unauthorized"},
		{"wrong secret", form(func(v url.Values) { v.Set("client_secret", "guess") }), "", 401, "unauthorized"},
		{"unknown scope", form(func(v url.Values) { v.Set("scope", "topups:read money:print") }), "", 400, "invalid_scope"},
		{"empty scope", form(func(v url.Values) { v.Set("scope", "") }), "", 400, "bad_request"},
		{"other grant", form(func(v url.Values) { v.Set("grant_type", "password") }), "", 400, "unsupported_grant_type"},
		{"missing secret", form(func(v url.Values) { v.Del("client_secret") }), "", 400, "bad_request"},
		{"extra field", form(func(v url.Values) { v.Set("audience", "x") }), "", 400, "bad_request"},
		{"repeated field", form(func(v url.Values) { v.Add("scope", "topups:admin") }), "", 400, "bad_request"},
		{"json body", []byte(`{"grant_type":"client_credentials"}`), "application/json", 400, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ct
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			r := e.c.Do(t, http.MethodPost, "/auth/token", tc.body, simtest.Header("Content-Type", ct))
			wantProblem(t, r, tc.status, tc.word)
		})
	}
	for _, rec := range e.sim.Requests() {
		if strings.Contains(rec.Body, testSecret) || rec.Header.Get("Authorization") != "" && rec.Header.Get("Authorization") != "[redacted]" {
			t.Fatalf("credentials recorded: %+v", rec)
		}
	}
}

// fakeClock is a settable clock for the Sim and the signer alike.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTokenExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	e := newEnv(t, withSignerOptions(httpsig.WithClock(clock.Now)), withConfig(func(c *upvestsim.Config) {
		c.Now = clock.Now
		c.TokenTTL = 10 * time.Minute
	}))
	path := "/account_groups/" + group1 + "/payments/cash_balance"
	clock.Add(10*time.Minute - time.Second)
	want(t, e.get(t, path), http.StatusOK)
	clock.Add(time.Second)
	wantProblem(t, e.get(t, path), http.StatusUnauthorized, "unauthorized", "expired")
	e.tok = e.c.MustToken(t, "positions:read")
	want(t, e.get(t, path), http.StatusOK)
}

func TestScopes(t *testing.T) {
	e := newEnv(t)
	readTopups := e.c.MustToken(t, "topups:read")
	cases := []struct {
		name, method, path string
		body               any
		tok                string
		status             int
	}{
		{"read scope cannot create", http.MethodPost, "/payments/topups", topup(group1, "1.00"), readTopups, 403},
		{"topups scope cannot read balances", http.MethodGet, "/account_groups/" + group1 + "/payments/cash_balance", nil, readTopups, 403},
		{"topups scope cannot read payments", http.MethodGet, "/account_groups/" + group1 + "/payments/withdrawals", nil, readTopups, 403},
		{"read scope may list", http.MethodGet, "/account_groups/" + group1 + "/payments/topups", nil, readTopups, 200},
		{"no token", http.MethodGet, "/account_groups/" + group1 + "/payments/topups", nil, "", 401},
		{"unknown token", http.MethodGet, "/account_groups/" + group1 + "/payments/topups", nil, "bm90LWEtdG9rZW4", 401},
		{"verify keys need webhooks scope", http.MethodGet, "/auth/verify_keys", nil, readTopups, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts []simtest.Option
			if tc.tok != "" {
				opts = append(opts, simtest.Token(tc.tok))
			}
			var body []byte
			if tc.body != nil {
				body = mustJSON(t, tc.body)
				opts = append(opts, simtest.IdempotencyKey(newKey()))
			}
			r := e.c.Do(t, tc.method, tc.path, body, opts...)
			want(t, r, tc.status)
		})
	}
}

func TestNegotiation(t *testing.T) {
	e := newEnv(t)
	path := "/account_groups/" + group1 + "/payments/cash_balance"
	wantProblem(t, e.get(t, path, simtest.Header("Upvest-Api-Version", "2")), http.StatusBadRequest, "bad_request", "upvest-api-version")
	want(t, e.get(t, path, simtest.Header("Upvest-Api-Version", "")), http.StatusOK)
	wantProblem(t, e.get(t, path, simtest.Header("Accept", "text/html")), http.StatusNotAcceptable, "not_acceptable")
	wantProblem(t, e.get(t, path, simtest.Header("Accept", "application/json;q=0")), http.StatusNotAcceptable, "not_acceptable")
	want(t, e.get(t, path, simtest.Header("Accept", "text/html, */*;q=0.1")), http.StatusOK)
	want(t, e.get(t, path, simtest.Header("Accept", "")), http.StatusOK)
}
