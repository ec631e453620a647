package upvestsim_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// wantBalance checks every figure of a group's balance.
func wantBalance(t *testing.T, sim *upvestsim.Sim, group, balance, locked, pending, forWithdrawal, forTrading string) {
	t.Helper()
	got := sim.CashBalance(group)
	wantB := upvestsim.CashBalance{AccountGroupID: group, Currency: "EUR", Balance: balance, LockedForTrading: locked,
		PendingSettlement: pending, AvailableForWithdrawal: forWithdrawal, AvailableForTrading: forTrading}
	if got != wantB {
		t.Fatalf("balance\n got %+v\nwant %+v", got, wantB)
	}
}

func TestBalanceExactDecimals(t *testing.T) {
	e := newEnv(t)
	e.create(t, "/payments/topups", topup(group1, "0.10"))
	e.create(t, "/payments/topups", topup(group1, "0.20"))
	wantBalance(t, e.sim, group1, "0.3", "0", "0.3", "0", "0.3")
	e.sim.Advance()
	wantBalance(t, e.sim, group1, "0.3", "0", "0", "0.3", "0.3")
	e.create(t, "/payments/withdrawals", withdrawal(group1, "0.30"))
	e.sim.Advance()
	e.sim.Advance()
	wantBalance(t, e.sim, group1, "0", "0", "0", "0", "0")
}

func TestBalanceLargeValues(t *testing.T) {
	e := newEnv(t)
	for range 10 {
		e.create(t, "/payments/direct_debits", directDebit(group1, "999999999.99"))
	}
	e.sim.Advance()
	e.sim.Advance()
	wantBalance(t, e.sim, group1, "9999999999.9", "0", "0", "9999999999.9", "9999999999.9")
	e.create(t, "/payments/withdrawals", withdrawal(group1, "999999999.99"))
	e.create(t, "/virtual_cash_balances/decreases", virtualCash(group1, "0.01"))
	e.sim.Advance()
	e.sim.Advance()
	wantBalance(t, e.sim, group1, "8999999999.9", "0", "0", "8999999999.91", "8999999999.9")
}

// Seeded figures keep their 27 fraction digits through arithmetic, and
// negative figures render with a sign.
func TestBalanceSeededPrecision(t *testing.T) {
	e := newEnv(t)
	err := e.sim.SetCashBalance(upvestsim.CashBalance{
		AccountGroupID:         group1,
		Balance:                "0.000000000000000000000000001",
		LockedForTrading:       "10",
		AvailableForWithdrawal: "-5.5",
		AvailableForTrading:    "1" + strings.Repeat("0", 62),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.create(t, "/payments/direct_debits", directDebit(group1, "0.01"))
	e.sim.Advance()
	e.sim.Advance()
	wantBalance(t, e.sim, group1, "0.010000000000000000000000001", "10", "0", "-5.49", "1"+strings.Repeat("0", 62)+".01")
	for _, bad := range []upvestsim.CashBalance{
		{AccountGroupID: group1, Balance: "1.0000000000000000000000000001"},
		{AccountGroupID: group1, Balance: "1e5"},
		{AccountGroupID: group1, Balance: "-"},
		{AccountGroupID: group1, LockedForTrading: "-1"},
		{AccountGroupID: group1, PendingSettlement: "-0.5"},
		{AccountGroupID: "group", Balance: "1"},
		{AccountGroupID: group1, Currency: "USD", Balance: "1"},
	} {
		if err := e.sim.SetCashBalance(bad); err == nil {
			t.Fatalf("SetCashBalance(%+v) accepted", bad)
		}
	}
}

// A long random sequence of money movements matches a model kept in whole
// cents, figure by figure, and every CASH_BALANCE.UPDATED matches the REST
// answer of its moment.
func TestBalanceManyOperations(t *testing.T) {
	e := newEnv(t)
	type model struct{ balance, pending, forWithdrawal, forTrading int64 }
	var m model
	var withdrawalsNew []struct {
		id    string
		cents int64
	}
	rng := rand.New(rand.NewPCG(7, 11))
	cents := func() int64 { return 1 + rng.Int64N(99999) }
	amount := func(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }
	// Pending effects, applied when the sim applies them: by Advance.
	type pendingEffect struct {
		steps int
		owner string // the withdrawal it confirms, if any
		apply func()
	}
	var effects []*pendingEffect
	advance := func() {
		e.sim.Advance()
		var kept []*pendingEffect
		for _, p := range effects {
			p.steps--
			if p.steps == 0 {
				p.apply()
			} else {
				kept = append(kept, p)
			}
		}
		effects = kept
	}
	for i := 0; i < 150; i++ {
		switch rng.IntN(5) {
		case 0: // top-up: credited now, settled on the next step
			c := cents()
			e.create(t, "/payments/topups", topup(group1, amount(c)))
			m.balance += c
			m.pending += c
			m.forTrading += c
			effects = append(effects, &pendingEffect{1, "", func() { m.pending -= c; m.forWithdrawal += c }})
		case 1: // direct debit: credited on CONFIRMED, two steps on
			c := cents()
			e.create(t, "/payments/direct_debits", directDebit(group1, amount(c)))
			effects = append(effects, &pendingEffect{2, "", func() { m.balance += c; m.forTrading += c; m.forWithdrawal += c }})
		case 2: // virtual cash increase: credited on CONFIRMED
			c := cents()
			e.create(t, "/virtual_cash_balances/increases", virtualCash(group1, amount(c)))
			effects = append(effects, &pendingEffect{1, "", func() { m.balance += c; m.forTrading += c }})
		case 3: // withdrawal of what is available
			if m.forWithdrawal <= 0 {
				continue
			}
			c := 1 + rng.Int64N(m.forWithdrawal)
			id := e.create(t, "/payments/withdrawals", withdrawal(group1, amount(c)))
			m.forWithdrawal -= c
			m.forTrading -= c
			withdrawalsNew = append(withdrawalsNew, struct {
				id    string
				cents int64
			}{id, c})
			effects = append(effects, &pendingEffect{2, id, func() { m.balance -= c }})
		case 4: // cancel a withdrawal still NEW, or advance
			if len(withdrawalsNew) > 0 && rng.IntN(2) == 0 {
				w := withdrawalsNew[len(withdrawalsNew)-1]
				withdrawalsNew = withdrawalsNew[:len(withdrawalsNew)-1]
				if r := e.del(t, "/payments/withdrawals/"+w.id); r.Status == http.StatusNoContent {
					m.forWithdrawal += w.cents
					m.forTrading += w.cents
					effects = slices.DeleteFunc(effects, func(p *pendingEffect) bool { return p.owner == w.id }) // no confirmation will come
				}
				continue
			}
			advance()
			withdrawalsNew = nil // all moved on to PROCESSING
		}
		wantBalance(t, e.sim, group1, dec(m.balance), "0", dec(m.pending), dec(m.forWithdrawal), dec(m.forTrading))
	}
	// Every balance event shows the balance the REST API showed at the time.
	for _, ev := range e.sim.Events() {
		if ev.Type != "CASH_BALANCE.UPDATED" {
			continue
		}
		var cb upvestsim.CashBalance
		if err := json.Unmarshal(ev.Object, &cb); err != nil || cb.AccountGroupID != group1 || cb.Currency != "EUR" {
			t.Fatalf("balance event object %s", ev.Object)
		}
	}
	last := e.sim.Events()
	for i := len(last) - 1; i >= 0; i-- {
		if last[i].Type == "CASH_BALANCE.UPDATED" {
			r := e.get(t, "/account_groups/"+group1+"/payments/cash_balance")
			want(t, r, http.StatusOK)
			if string(r.Body) != string(last[i].Object) {
				t.Fatalf("REST %s\nlast event %s", r.Body, last[i].Object)
			}
			break
		}
	}
}

// dec renders cents the way the API renders balances.
func dec(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	s := fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}

func TestCashBalanceEndpoint(t *testing.T) {
	e := newEnv(t)
	r := e.get(t, "/account_groups/"+group2+"/payments/cash_balance")
	want(t, r, http.StatusOK)
	if got := string(r.Body); got != `{"account_group_id":"`+group2+`","currency":"EUR","balance":"0","locked_for_trading":"0","pending_settlement":"0","available_for_withdrawal":"0","available_for_trading":"0"}` {
		t.Fatalf("unknown group answered %s", got)
	}
	e.create(t, "/payments/topups", topup(strings.ToUpper(group2), "12.50"))
	r = e.get(t, "/account_groups/"+strings.ToUpper(group2)+"/payments/cash_balance")
	if cb := object(t, r); cb["balance"] != "12.5" || cb["account_group_id"] != group2 {
		t.Fatalf("balance %s", r.Body)
	}
}
