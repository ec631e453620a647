package upvestsim_test

import (
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

const (
	testClientID = "ebabcf4d-61c3-4942-875c-e265a7c2d062"
	testSecret   = "s3cret-for-tests"
	testKeyID    = "tenant-key"
	group1       = "2596db3b-0d03-4651-9eda-970910479dfb"
	group2       = "ac1c39e9-2101-46b8-a624-d10a9e351b6c"
	userID       = "b668282b-cdf3-439a-bda2-3f3c9f655bb7"
	mandateID    = "730b8719-0bc6-401d-98dd-b2de72afbf05"
	refAccountID = "295378ec-036e-4f3f-ae5c-2be85c93e837"
)

// allScopes is every scope the simulated operations need.
var allScopes = []string{
	"virtual_cash_balances:admin", "topups:admin", "topups:read", "payments:admin", "payments:read",
	"positions:read", "webhooks:admin", "webhooks:read",
}

// env is a Sim served on loopback with a client holding a token for every
// scope.
type env struct {
	sim *upvestsim.Sim
	srv *httptest.Server
	c   *simtest.Client
	tok string
	key crypto.Signer
}

// envSetup is what envOptions change before the Sim starts.
type envSetup struct {
	cfg        upvestsim.Config
	signerOpts []httpsig.SignerOption
	alg        string // tenant key algorithm
}

type envOption func(*envSetup)

func withConfig(f func(*upvestsim.Config)) envOption {
	return func(s *envSetup) { f(&s.cfg) }
}

func withKeyAlg(alg string) envOption { return func(s *envSetup) { s.alg = alg } }

func withSignerOptions(opts ...httpsig.SignerOption) envOption {
	return func(s *envSetup) { s.signerOpts = append(s.signerOpts, opts...) }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	setup := envSetup{
		cfg: upvestsim.Config{
			ClientID:           testClientID,
			ClientSecret:       testSecret,
			WebhookBackoffUnit: time.Millisecond,
		},
		alg: simtest.P256,
	}
	for _, o := range opts {
		o(&setup)
	}
	key := simtest.GenerateKey(t, setup.alg)
	cfg := setup.cfg
	cfg.TenantKeys = map[string]crypto.PublicKey{testKeyID: key.Public()}
	sim, err := upvestsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	e := &env{
		sim: sim,
		srv: srv,
		key: key,
		c: &simtest.Client{
			BaseURL:      srv.URL,
			ClientID:     testClientID,
			ClientSecret: testSecret,
			Signer:       simtest.NewSigner(t, key, testKeyID, setup.signerOpts...),
			HTTP:         srv.Client(),
		},
	}
	e.tok = e.c.MustToken(t, allScopes...)
	return e
}

// uuidSeq makes distinct, valid idempotency keys.
var uuidSeq struct {
	sync.Mutex
	n int
}

func newKey() string {
	uuidSeq.Lock()
	defer uuidSeq.Unlock()
	uuidSeq.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", uuidSeq.n)
}

// post sends a creating POST with a fresh idempotency key.
func (e *env) post(t *testing.T, path string, body any, opts ...simtest.Option) *simtest.Response {
	t.Helper()
	return e.c.Do(t, http.MethodPost, path, mustJSON(t, body),
		append([]simtest.Option{simtest.Token(e.tok), simtest.IdempotencyKey(newKey())}, opts...)...)
}

func (e *env) get(t *testing.T, path string, opts ...simtest.Option) *simtest.Response {
	t.Helper()
	return e.c.Do(t, http.MethodGet, path, nil, append([]simtest.Option{simtest.Token(e.tok)}, opts...)...)
}

func (e *env) del(t *testing.T, path string) *simtest.Response {
	t.Helper()
	return e.c.Do(t, http.MethodDelete, path, nil, simtest.Token(e.tok))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	if b, ok := v.([]byte); ok {
		return b
	}
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// object decodes a JSON object answer.
func object(t *testing.T, r *simtest.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %s", r.Status, r.Body)
	}
	return m
}

// want checks the status of an answer, showing the body when it differs.
func want(t *testing.T, r *simtest.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if r.Header.Get("upvest-request-id") == "" {
		t.Fatalf("answer without upvest-request-id")
	}
}

// wantProblem checks an error answer: status, problem+json with the type
// word, and a detail containing each of details.
func wantProblem(t *testing.T, r *simtest.Response, status int, word string, details ...string) {
	t.Helper()
	want(t, r, status)
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content-type %q, want application/problem+json", ct)
	}
	p := r.Problem()
	if p.Status != status || p.Type != "https://docs.upvest.co/errors/"+word || p.RequestID != r.Header.Get("upvest-request-id") {
		t.Fatalf("problem %+v, want status %d type …/%s and the request id", p, status, word)
	}
	for _, d := range details {
		if !strings.Contains(p.Detail, d) {
			t.Fatalf("detail %q does not mention %q", p.Detail, d)
		}
	}
}

// Request bodies.
func virtualCash(group, amount string) map[string]string {
	return map[string]string{"account_group_id": group, "amount": amount, "currency": "EUR"}
}

func topup(group, amount string) map[string]string {
	return map[string]string{"account_group_id": group, "cash_amount": amount, "currency": "EUR"}
}

func directDebit(group, amount string) map[string]string {
	return map[string]string{"user_id": userID, "account_group_id": group, "mandate_id": mandateID, "cash_amount": amount, "remittance_information": "payment for green energy portfolio"}
}

func withdrawal(group, amount string) map[string]string {
	return map[string]string{"reference_account_id": refAccountID, "account_group_id": group, "user_id": userID, "amount": amount, "remittance_information": "Withdrawal"}
}

// create posts a body and returns the new resource's id.
func (e *env) create(t *testing.T, path string, body any) string {
	t.Helper()
	r := e.post(t, path, body)
	if r.Status/100 != 2 {
		t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	return object(t, r)["id"].(string)
}

// fund gives a group money available for withdrawal via a direct debit.
func (e *env) fund(t *testing.T, group, amount string) {
	t.Helper()
	e.create(t, "/payments/direct_debits", directDebit(group, amount))
	e.sim.Advance()
	e.sim.Advance()
}

// eventTypes lists the types of the events emitted so far.
func eventTypes(sim *upvestsim.Sim) []string {
	var types []string
	for _, ev := range sim.Events() {
		types = append(types, ev.Type)
	}
	return types
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
