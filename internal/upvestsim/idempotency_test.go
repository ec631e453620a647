package upvestsim_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

func TestIdempotentReplay(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path   string
		body   any
		status int
	}{
		{"/virtual_cash_balances/increases", virtualCash(group1, "5.00"), http.StatusAccepted},
		{"/virtual_cash_balances/decreases", virtualCash(group1, "5.00"), http.StatusAccepted},
		{"/payments/topups", topup(group1, "5.00"), http.StatusCreated},
		{"/payments/direct_debits", directDebit(group1, "5.00"), http.StatusCreated},
		{"/payments/withdrawals", withdrawal(group2, "0.01"), http.StatusUnprocessableEntity},
	} {
		t.Run(tc.path, func(t *testing.T) {
			key := newKey()
			body := mustJSON(t, tc.body)
			first := e.c.Do(t, http.MethodPost, tc.path, body, simtest.Token(e.tok), simtest.IdempotencyKey(key))
			want(t, first, tc.status)
			events := len(e.sim.Events())
			second := e.c.Do(t, http.MethodPost, tc.path, body, simtest.Token(e.tok), simtest.IdempotencyKey(key))
			want(t, second, tc.status)
			wantEffects := 1
			if tc.status >= 400 {
				wantEffects = 0
			} else if !bytes.Equal(first.Body, second.Body) {
				t.Fatalf("replay answered\n%s\nnot\n%s", second.Body, first.Body)
			}
			if got := e.sim.Effects(key); got != wantEffects {
				t.Fatalf("Effects = %d, want %d", got, wantEffects)
			}
			if n := len(e.sim.Events()); n != events {
				t.Fatalf("replay emitted %d events", n-events)
			}
		})
	}
}

func TestIdempotencyKeyReusedForAnotherBody(t *testing.T) {
	e := newEnv(t)
	key := newKey()
	want(t, e.post(t, "/payments/topups", topup(group1, "5.00"), simtest.IdempotencyKey(key)), http.StatusCreated)
	wantProblem(t, e.post(t, "/payments/topups", topup(group1, "6.00"), simtest.IdempotencyKey(key)), http.StatusUnprocessableEntity, "unprocessable_entity", key)
	wantProblem(t, e.post(t, "/payments/direct_debits", directDebit(group1, "5.00"), simtest.IdempotencyKey(key)), http.StatusUnprocessableEntity, "unprocessable_entity")
	if got := e.sim.Effects(key); got != 1 {
		t.Fatalf("Effects = %d, want 1", got)
	}
	if got := e.sim.CashBalance(group1).Balance; got != "5" {
		t.Fatalf("balance %s, want 5", got)
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, Method: http.MethodPost, PathPrefix: "/payments/topups", Delay: 600 * time.Millisecond})
	key := newKey()
	body := mustJSON(t, topup(group1, "5.00"))
	send := func() *simtest.Response {
		return e.c.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(e.tok), simtest.IdempotencyKey(key))
	}
	firstDone := make(chan *simtest.Response)
	go func() { firstDone <- send() }()
	time.Sleep(150 * time.Millisecond) // the first now holds the key, for 600ms
	wantProblem(t, send(), http.StatusConflict, "conflict", key)
	first := <-firstDone
	want(t, first, http.StatusCreated)
	replay := send()
	want(t, replay, http.StatusCreated)
	if !bytes.Equal(first.Body, replay.Body) {
		t.Fatalf("replay %s differs from %s", replay.Body, first.Body)
	}
	if got := e.sim.Effects(key); got != 1 {
		t.Fatalf("Effects = %d, want 1", got)
	}
}

// Many concurrent duplicates: exactly one acts, every other answer is a
// 409 or the same resource.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	e := newEnv(t)
	key := newKey()
	body := mustJSON(t, directDebit(group1, "7.00"))
	var wg sync.WaitGroup
	answers := make([]*simtest.Response, 16)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = e.c.Do(t, http.MethodPost, "/payments/direct_debits", body, simtest.Token(e.tok), simtest.IdempotencyKey(key))
		}()
	}
	wg.Wait()
	var created []byte
	for _, r := range answers {
		switch r.Status {
		case http.StatusConflict:
		case http.StatusCreated:
			if created != nil && !bytes.Equal(created, r.Body) {
				t.Fatalf("two different resources for one key:\n%s\n%s", created, r.Body)
			}
			created = r.Body
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	if got := e.sim.Effects(key); got != 1 || created == nil {
		t.Fatalf("Effects = %d (created %s), want 1", got, created)
	}
}

func TestIdempotencyKeyChecks(t *testing.T) {
	e := newEnv(t)
	body := mustJSON(t, topup(group1, "5.00"))
	r := e.c.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(e.tok))
	wantProblem(t, r, http.StatusBadRequest, "missing_idempotency_key")
	for _, bad := range []string{"not-a-uuid", "ccb07f42-4104-64ad-8e1f-c660bb7b269c", "ccb07f42-4104-44ad-ce1f-c660bb7b269c", "ccb07f42410444ad8e1fc660bb7b269"} {
		r := e.c.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(e.tok), simtest.IdempotencyKey(bad))
		wantProblem(t, r, http.StatusBadRequest, "bad_request", "idempotency-key")
	}
	// Undashed keys match the upstream pattern.
	want(t, e.c.Do(t, http.MethodPost, "/payments/topups", body, simtest.Token(e.tok), simtest.IdempotencyKey("ccb07f42410444ad8e1fc660bb7b269c")), http.StatusCreated)
	if n := len(e.sim.Events()); n != 2 { // TOPUP.CONFIRMED, CASH_BALANCE.UPDATED
		t.Fatalf("%d events, want 2: %v", n, eventTypes(e.sim))
	}
}

// A refused request does not use up its key: once the cause is fixed, the
// same request with the same key acts.
func TestIdempotencyKeyFreeAfterRefusal(t *testing.T) {
	e := newEnv(t)
	key := newKey()
	body := withdrawal(group1, "10.00")
	wantProblem(t, e.post(t, "/payments/withdrawals", body, simtest.IdempotencyKey(key)), http.StatusUnprocessableEntity, "unprocessable_entity", "available_for_withdrawal")
	e.fund(t, group1, "10.00")
	want(t, e.post(t, "/payments/withdrawals", body, simtest.IdempotencyKey(key)), http.StatusCreated)
	if got := e.sim.Effects(key); got != 1 {
		t.Fatalf("Effects = %d, want 1", got)
	}
}
