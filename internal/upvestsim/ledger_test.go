package upvestsim_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// TestLedger: every money-moving resource appears once with the key that
// created it and its current status, replays add nothing, and the balances
// are the same as GET cash_balance gives; /_sim/ledger serves the same.
func TestLedger(t *testing.T) {
	e := newEnv(t)
	e.fund(t, group1, "50.00")
	keys := map[string]string{}
	for kind, c := range map[string]struct {
		path   string
		body   any
		status int
	}{
		upvestsim.KindVirtualCashIncrease: {"/virtual_cash_balances/increases", virtualCash(group1, "1.00"), http.StatusAccepted},
		upvestsim.KindVirtualCashDecrease: {"/virtual_cash_balances/decreases", virtualCash(group1, "2.00"), http.StatusAccepted},
		upvestsim.KindTopup:               {"/payments/topups", topup(group1, "3.00"), http.StatusCreated},
		upvestsim.KindWithdrawal:          {"/payments/withdrawals", withdrawal(group1, "4.00"), http.StatusCreated},
	} {
		keys[kind] = newKey()
		for range 2 { // the second is a replay
			want(t, e.c.Do(t, http.MethodPost, c.path, mustJSON(t, c.body), simtest.Token(e.tok), simtest.IdempotencyKey(keys[kind])), c.status)
		}
	}
	l := e.sim.Ledger()
	byKind := map[string][]upvestsim.LedgerEntry{}
	for _, r := range l.Resources {
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	if n := len(byKind[upvestsim.KindDirectDebit]); n != 1 {
		t.Fatalf("%d direct debits: %+v", n, l.Resources)
	}
	for kind, key := range keys {
		rs := byKind[kind]
		if len(rs) != 1 || rs[0].IdempotencyKey != key || rs[0].AccountGroupID != group1 || rs[0].Currency != "EUR" || l.Effects[key] != 1 {
			t.Errorf("%s: %+v, effects %d; want one, created with key %s", kind, rs, l.Effects[key], key)
		}
	}
	w := byKind[upvestsim.KindWithdrawal][0]
	if w.Amount != "4.00" || w.Status != "NEW" {
		t.Errorf("withdrawal %+v", w)
	}
	want(t, e.del(t, "/payments/withdrawals/"+w.ID), http.StatusNoContent)

	status, body := e.control(t, http.MethodGet, "ledger", "")
	var served upvestsim.Ledger
	if err := json.Unmarshal(body, &served); status != http.StatusOK || err != nil {
		t.Fatalf("ledger: %d %s", status, body)
	}
	for _, r := range served.Resources {
		if r.ID == w.ID && r.Status != "CANCELLED" {
			t.Errorf("cancelled withdrawal in the ledger: %+v", r)
		}
	}
	if len(served.CashBalances) != 1 || served.CashBalances[0] != e.sim.CashBalance(group1) {
		t.Errorf("ledger balances %+v, cash balance %+v", served.CashBalances, e.sim.CashBalance(group1))
	}
}
