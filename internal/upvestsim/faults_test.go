package upvestsim_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

func TestFaultLatency(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, PathPrefix: "/account_groups/", Delay: 150 * time.Millisecond})
	start := time.Now()
	want(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance"), http.StatusOK)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
	start = time.Now()
	want(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance"), http.StatusOK)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("fault applied twice: %v", d)
	}
}

func TestConfigLatency(t *testing.T) {
	e := newEnv(t, withConfig(func(c *upvestsim.Config) { c.Latency = 60 * time.Millisecond }))
	start := time.Now()
	want(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance"), http.StatusOK)
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
}

// 429, 500 and 503 answer at once without effect; a retry with the same key
// then acts once.
func TestFaultStatuses(t *testing.T) {
	for _, tc := range []struct {
		kind   upvestsim.FaultKind
		status int
		word   string
	}{
		{upvestsim.Fault429, 429, "too_many_requests"},
		{upvestsim.Fault500, 500, "internal_server_error"},
		{upvestsim.Fault503, 503, "service_unavailable"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			e := newEnv(t)
			e.sim.InjectFault(upvestsim.Fault{Kind: tc.kind, Method: http.MethodPost, PathPrefix: "/payments/", Count: 2})
			want(t, e.get(t, "/account_groups/"+group1+"/payments/topups"), http.StatusOK) // other method: untouched
			key := newKey()
			for range 2 {
				wantProblem(t, e.post(t, "/payments/topups", topup(group1, "3.00"), simtest.IdempotencyKey(key)), tc.status, tc.word)
			}
			if n := len(e.sim.Events()); n != 0 || e.sim.Effects(key) != 0 {
				t.Fatalf("fault had effects: %v", eventTypes(e.sim))
			}
			want(t, e.post(t, "/payments/topups", topup(group1, "3.00"), simtest.IdempotencyKey(key)), http.StatusCreated)
			if e.sim.Effects(key) != 1 {
				t.Fatalf("Effects = %d", e.sim.Effects(key))
			}
			reqs := e.sim.Requests()
			if f := reqs[len(reqs)-2].Fault; f != tc.kind {
				t.Fatalf("recorded fault %q", f)
			}
		})
	}
}

func TestFault504AfterDelay(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault504, Delay: 120 * time.Millisecond})
	key := newKey()
	start := time.Now()
	wantProblem(t, e.post(t, "/payments/topups", topup(group1, "3.00"), simtest.IdempotencyKey(key)), http.StatusGatewayTimeout, "gateway_timeout")
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Fatalf("504 after %v", d)
	}
	if e.sim.Effects(key) != 0 || len(e.sim.Events()) != 0 {
		t.Fatal("504 had effects")
	}
}

// drop_after_apply: the effect happens, the answer is lost, and a retry
// with the same key replays the stored answer.
func TestFaultDropAfterApply(t *testing.T) {
	e := newEnv(t)
	// No keep-alive: Go's transport silently retries requests carrying an
	// Idempotency-Key when a reused connection drops; here the drop must show.
	e.c.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	e.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultDropAfterApply, PathPrefix: "/payments/topups"})
	key := newKey()
	body := mustJSON(t, topup(group1, "3.00"))
	if r, err := e.c.Send(t.Context(), http.MethodPost, "/payments/topups", body, simtest.Token(e.tok), simtest.IdempotencyKey(key)); err == nil {
		t.Fatalf("dropped request answered %d %s", r.Status, r.Body)
	}
	if e.sim.Effects(key) != 1 || e.sim.CashBalance(group1).Balance != "3" {
		t.Fatalf("effect not applied: Effects %d, balance %+v", e.sim.Effects(key), e.sim.CashBalance(group1))
	}
	r := e.c.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(e.tok), simtest.IdempotencyKey(key))
	want(t, r, http.StatusCreated)
	list := e.get(t, "/account_groups/"+group1+"/payments/topups")
	var l struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := list.JSON(&l); err != nil || len(l.Data) != 1 || l.Data[0].ID != object(t, r)["id"] {
		t.Fatalf("replay %s, list %s", r.Body, list.Body)
	}
	if e.sim.Effects(key) != 1 || e.sim.CashBalance(group1).Balance != "3" {
		t.Fatal("the retry acted again")
	}
}

// unreadable_answer: the effect happens and the status arrives, but only
// half the body; a retry with the same key replays the whole answer.
func TestFaultUnreadableAnswer(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultUnreadableAnswer, Method: http.MethodPost, PathPrefix: "/payments/topups"})
	key := newKey()
	body := mustJSON(t, topup(group1, "3.00"))
	cut := e.c.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(e.tok), simtest.IdempotencyKey(key))
	want(t, cut, http.StatusCreated)
	if json.Valid(cut.Body) || len(cut.Body) == 0 {
		t.Fatalf("cut answer decodes: %s", cut.Body)
	}
	if e.sim.Effects(key) != 1 || e.sim.CashBalance(group1).Balance != "3" {
		t.Fatalf("effect not applied: Effects %d, balance %+v", e.sim.Effects(key), e.sim.CashBalance(group1))
	}
	whole := e.c.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(e.tok), simtest.IdempotencyKey(key))
	want(t, whole, http.StatusCreated)
	if !bytes.HasPrefix(whole.Body, cut.Body) || object(t, whole)["status"] != "CONFIRMED" {
		t.Fatalf("replay %s is not the whole of %s", whole.Body, cut.Body)
	}
	if e.sim.Effects(key) != 1 {
		t.Fatal("the retry acted again")
	}
	if reqs := e.sim.Requests(); reqs[len(reqs)-2].Fault != upvestsim.FaultUnreadableAnswer {
		t.Fatalf("recorded fault %q", reqs[len(reqs)-2].Fault)
	}

	// An answer without a body has nothing to cut.
	id := object(t, whole)["id"].(string)
	e.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultUnreadableAnswer, Method: http.MethodDelete})
	want(t, e.del(t, "/payments/topups/"+id), http.StatusNoContent)
}

// Faults never touch the simulator's own endpoints.
func TestFaultsSkipControlEndpoints(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault500})
	r, err := e.srv.Client().Get(e.srv.URL + "/_sim/events")
	if err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("/_sim/events: %v %v", r, err)
	}
	r.Body.Close()
	wantProblem(t, e.get(t, "/account_groups/"+group1+"/payments/cash_balance"), http.StatusInternalServerError, "internal_server_error")
}

// faultSequence sends n unsigned requests to a fresh Sim with rate and seed
// and returns what each got: a status, "drop", or "cut" for an answer
// whose body does not decode.
func faultSequence(t *testing.T, rate float64, seed int64, n int) []string {
	t.Helper()
	sim, err := upvestsim.New(upvestsim.Config{
		ClientID: testClientID, ClientSecret: testSecret,
		TenantKeys: map[string]crypto.PublicKey{testKeyID: simtest.GenerateKey(t, simtest.P256).Public()},
		FaultRate:  rate, FaultSeed: seed,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer func() { srv.Close(); sim.Close() }()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var out []string
	for range n {
		resp, err := hc.Get(srv.URL + "/account_groups/" + group1 + "/payments/cash_balance")
		if err != nil {
			out = append(out, "drop")
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !json.Valid(b) {
			out = append(out, "cut")
			continue
		}
		out = append(out, fmt.Sprint(resp.StatusCode))
	}
	return out
}

func TestFaultSeedDeterminism(t *testing.T) {
	a := faultSequence(t, 0.5, 42, 60)
	b := faultSequence(t, 0.5, 42, 60)
	c := faultSequence(t, 0.5, 43, 60)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same faults: %v", a)
	}
	seen := map[string]int{}
	for _, s := range faultSequence(t, 1, 7, 100) {
		seen[s]++
	}
	for _, k := range []string{"429", "500", "503", "504", "drop", "cut"} {
		if seen[k] == 0 {
			t.Fatalf("rate 1 never produced %s: %v", k, seen)
		}
	}
	if seen["401"] != 0 {
		t.Fatalf("rate 1 let requests through: %v", seen)
	}
}
