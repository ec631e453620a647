package upvestsim_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// statusOf reads a resource's status with a GET.
func (e *env) statusOf(t *testing.T, path string) string {
	t.Helper()
	r := e.get(t, path)
	want(t, r, http.StatusOK)
	return object(t, r)["status"].(string)
}

// newEvents returns the types of the events emitted since n events.
func newEvents(sim *upvestsim.Sim, n int) []string { return eventTypes(sim)[n:] }

func wantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestVirtualCashIncreaseLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.post(t, "/virtual_cash_balances/increases", virtualCash(group1, "200.00"))
	want(t, r, http.StatusAccepted)
	inc := object(t, r)
	if inc["status"] != "ISSUED" || inc["amount"] != "200.00" || inc["currency"] != "EUR" || inc["account_group_id"] != group1 || inc["created_at"] != inc["updated_at"] {
		t.Fatalf("created %s", r.Body)
	}
	wantEvents(t, eventTypes(e.sim), "VIRTUAL_CASH_INCREASE.ISSUED")
	e.sim.Advance()
	wantEvents(t, eventTypes(e.sim), "VIRTUAL_CASH_INCREASE.ISSUED", "VIRTUAL_CASH_INCREASE.CONFIRMED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "200", "0", "0", "0", "200")
	e.sim.Advance()
	if n := len(e.sim.Events()); n != 3 {
		t.Fatalf("a final resource moved again: %v", eventTypes(e.sim))
	}
	// The event carries the resource as the API renders it.
	var obj map[string]any
	if err := json.Unmarshal(e.sim.Events()[1].Object, &obj); err != nil || obj["id"] != inc["id"] || obj["status"] != "CONFIRMED" {
		t.Fatalf("event object %s", e.sim.Events()[1].Object)
	}
}

func TestVirtualCashDecreaseLifecycle(t *testing.T) {
	e := newEnv(t)
	// Covered: ISSUED → CONFIRMED.
	e.create(t, "/virtual_cash_balances/increases", virtualCash(group1, "100.00"))
	e.sim.Advance()
	n := len(e.sim.Events())
	e.create(t, "/virtual_cash_balances/decreases", virtualCash(group1, "30.00"))
	e.sim.Advance()
	wantEvents(t, newEvents(e.sim, n), "VIRTUAL_CASH_DECREASE.ISSUED", "VIRTUAL_CASH_DECREASE.CONFIRMED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "70", "0", "0", "0", "70")

	// Not covered: ISSUED → QUEUED, stays QUEUED, CONFIRMED once covered.
	n = len(e.sim.Events())
	dec := e.create(t, "/virtual_cash_balances/decreases", virtualCash(group1, "100.00"))
	e.sim.Advance()
	e.sim.Advance()
	wantEvents(t, newEvents(e.sim, n), "VIRTUAL_CASH_DECREASE.ISSUED", "VIRTUAL_CASH_DECREASE.QUEUED")
	e.create(t, "/virtual_cash_balances/increases", virtualCash(group1, "30.00"))
	n = len(e.sim.Events())
	e.sim.Advance() // the queued decrease comes first and is still short; the increase confirms after it
	wantEvents(t, newEvents(e.sim, n), "VIRTUAL_CASH_INCREASE.CONFIRMED", "CASH_BALANCE.UPDATED")
	e.sim.Advance()
	wantEvents(t, newEvents(e.sim, n), "VIRTUAL_CASH_INCREASE.CONFIRMED", "CASH_BALANCE.UPDATED", "VIRTUAL_CASH_DECREASE.CONFIRMED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "0", "0", "0", "0", "0")
	// CONFIRMED cannot be cancelled.
	wantProblem(t, e.del(t, "/virtual_cash_balances/decreases/"+dec), http.StatusUnprocessableEntity, "unprocessable_entity", "CONFIRMED")
}

func TestVirtualCashDecreaseCancel(t *testing.T) {
	e := newEnv(t)
	issued := e.create(t, "/virtual_cash_balances/decreases", virtualCash(group1, "10.00"))
	r := e.del(t, "/virtual_cash_balances/decreases/"+issued)
	want(t, r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Fatalf("DELETE answered a body: %s", r.Body)
	}
	queued := e.create(t, "/virtual_cash_balances/decreases", virtualCash(group1, "10.00"))
	e.sim.Advance()
	want(t, e.del(t, "/virtual_cash_balances/decreases/"+queued), http.StatusNoContent)
	wantEvents(t, eventTypes(e.sim), "VIRTUAL_CASH_DECREASE.ISSUED", "VIRTUAL_CASH_DECREASE.CANCELLED",
		"VIRTUAL_CASH_DECREASE.ISSUED", "VIRTUAL_CASH_DECREASE.QUEUED", "VIRTUAL_CASH_DECREASE.CANCELLED")
	wantProblem(t, e.del(t, "/virtual_cash_balances/decreases/"+queued), http.StatusUnprocessableEntity, "unprocessable_entity", "CANCELLED")
	e.sim.Advance()
	if n := len(e.sim.Events()); n != 5 {
		t.Fatalf("cancelled decreases moved on: %v", eventTypes(e.sim))
	}
	// An increase is not a decrease.
	inc := e.create(t, "/virtual_cash_balances/increases", virtualCash(group1, "10.00"))
	wantProblem(t, e.del(t, "/virtual_cash_balances/decreases/"+inc), http.StatusNotFound, "not_found")
}

func TestTopupLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.post(t, "/payments/topups", topup(group1, "100.01"))
	want(t, r, http.StatusCreated)
	tp := object(t, r)
	id := tp["id"].(string)
	if tp["status"] != "CONFIRMED" || tp["cash_amount"] != "100.01" || tp["settlement_reference"] == "" {
		t.Fatalf("created %s", r.Body)
	}
	wantEvents(t, eventTypes(e.sim), "TOPUP.CONFIRMED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "100.01", "0", "100.01", "0", "100.01")
	e.sim.Advance()
	if s := e.statusOf(t, "/payments/topups/"+id); s != "SETTLED" {
		t.Fatalf("status %s, want SETTLED", s)
	}
	wantEvents(t, eventTypes(e.sim)[2:], "TOPUP.SETTLED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "100.01", "0", "0", "100.01", "100.01")
	wantProblem(t, e.del(t, "/payments/topups/"+id), http.StatusUnprocessableEntity, "unprocessable_entity", "SETTLED")

	// Cancel while CONFIRMED reverses the credit.
	other := e.create(t, "/payments/topups", topup(group1, "50.00"))
	n := len(e.sim.Events())
	want(t, e.del(t, "/payments/topups/"+other), http.StatusNoContent)
	wantEvents(t, newEvents(e.sim, n), "TOPUP.CANCELLED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "100.01", "0", "0", "100.01", "100.01")
	if s := e.statusOf(t, "/payments/topups/"+other); s != "CANCELLED" {
		t.Fatalf("status %s, want CANCELLED", s)
	}
	e.sim.Advance()
	if s := e.statusOf(t, "/payments/topups/"+other); s != "CANCELLED" {
		t.Fatalf("a cancelled top-up moved to %s", s)
	}
}

func TestDirectDebitLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.post(t, "/payments/direct_debits", directDebit(group1, "200.00"))
	want(t, r, http.StatusCreated)
	dd := object(t, r)
	id := dd["id"].(string)
	if dd["status"] != "NEW" || dd["currency"] != "EUR" || dd["mandate_id"] != mandateID || dd["remittance_information"] != "payment for green energy portfolio" {
		t.Fatalf("created %s", r.Body)
	}
	for _, status := range []string{"PROCESSING", "CONFIRMED", "CONFIRMED"} {
		e.sim.Advance()
		if s := e.statusOf(t, "/payments/direct_debits/"+id); s != status {
			t.Fatalf("status %s, want %s", s, status)
		}
	}
	wantEvents(t, eventTypes(e.sim), "DIRECT_DEBIT.NEW", "DIRECT_DEBIT.PROCESSING", "DIRECT_DEBIT.CONFIRMED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "200", "0", "0", "200", "200")
}

func TestWithdrawalLifecycle(t *testing.T) {
	e := newEnv(t)
	e.fund(t, group1, "100.00")
	wantProblem(t, e.post(t, "/payments/withdrawals", withdrawal(group1, "100.01")), http.StatusUnprocessableEntity, "unprocessable_entity", "available_for_withdrawal")

	n := len(e.sim.Events())
	r := e.post(t, "/payments/withdrawals", withdrawal(group1, "60.00"))
	want(t, r, http.StatusCreated)
	w := object(t, r)
	id := w["id"].(string)
	if w["status"] != "NEW" || w["reference_account_id"] != refAccountID || w["remittance_information"] != "Withdrawal" {
		t.Fatalf("created %s", r.Body)
	}
	wantBalance(t, e.sim, group1, "100", "0", "0", "40", "40")
	// The reserve counts against the next withdrawal.
	wantProblem(t, e.post(t, "/payments/withdrawals", withdrawal(group1, "40.01")), http.StatusUnprocessableEntity, "unprocessable_entity")
	e.sim.Advance()
	wantProblem(t, e.del(t, "/payments/withdrawals/"+id), http.StatusUnprocessableEntity, "unprocessable_entity", "PROCESSING")
	e.sim.Advance()
	if s := e.statusOf(t, "/payments/withdrawals/"+id); s != "CONFIRMED" {
		t.Fatalf("status %s", s)
	}
	wantEvents(t, newEvents(e.sim, n), "WITHDRAWAL.NEW", "CASH_BALANCE.UPDATED", "WITHDRAWAL.PROCESSING", "WITHDRAWAL.CONFIRMED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "40", "0", "0", "40", "40")

	// Cancel while NEW releases the reserve.
	other := e.create(t, "/payments/withdrawals", withdrawal(group1, "40.00"))
	wantBalance(t, e.sim, group1, "40", "0", "0", "0", "0")
	n = len(e.sim.Events())
	want(t, e.del(t, "/payments/withdrawals/"+other), http.StatusNoContent)
	wantEvents(t, newEvents(e.sim, n), "WITHDRAWAL.CANCELLED", "CASH_BALANCE.UPDATED")
	wantBalance(t, e.sim, group1, "40", "0", "0", "40", "40")
	wantProblem(t, e.del(t, "/payments/withdrawals/"+other), http.StatusUnprocessableEntity, "unprocessable_entity", "CANCELLED")
	e.sim.Advance()
	if s := e.statusOf(t, "/payments/withdrawals/"+other); s != "CANCELLED" {
		t.Fatalf("a cancelled withdrawal moved to %s", s)
	}
}

// Events are strictly ordered by created_at even when the clock stands still.
func TestEventTimesStrictlyIncrease(t *testing.T) {
	frozen := func() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) }
	e := newEnv(t, withConfig(func(c *upvestsim.Config) { c.Now = frozen }), withSignerOptions(httpsig.WithClock(frozen)))
	e.fund(t, group1, "1.00")
	evs := e.sim.Events()
	for i := 1; i < len(evs); i++ {
		if !evs[i].CreatedAt.After(evs[i-1].CreatedAt) {
			t.Fatalf("event %d at %v is not after %v", i, evs[i].CreatedAt, evs[i-1].CreatedAt)
		}
	}
	raw, _ := json.Marshal(evs[0])
	var ev map[string]any
	_ = json.Unmarshal(raw, &ev)
	if ev["created_at"] != "2024-05-01T12:00:00.000000Z" {
		t.Fatalf("created_at rendered %v", ev["created_at"])
	}
}

// Step advances resources on its own.
func TestStep(t *testing.T) {
	e := newEnv(t, withConfig(func(c *upvestsim.Config) { c.Step = 10 * time.Millisecond }))
	id := e.create(t, "/payments/direct_debits", directDebit(group1, "1.00"))
	eventually(t, "the direct debit to confirm", func() bool { return e.statusOf(t, "/payments/direct_debits/"+id) == "CONFIRMED" })
	e.sim.Close()
	n := len(e.sim.Events())
	e.create(t, "/payments/direct_debits", directDebit(group1, "1.00"))
	time.Sleep(50 * time.Millisecond)
	if got := len(e.sim.Events()); got != n+1 {
		t.Fatalf("transitions after Close: %v", eventTypes(e.sim)[n:])
	}
}
