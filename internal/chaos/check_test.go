//go:build chaos

package chaos_test

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// check holds the run's results against the simulator's ledger.
func check(t *testing.T, l upvestsim.Ledger, ops []*op, groups []string) {
	t.Helper()
	byKey := map[string][]upvestsim.LedgerEntry{}
	byID := map[string]upvestsim.LedgerEntry{}
	for _, r := range l.Resources {
		k := strings.ToLower(r.IdempotencyKey)
		byKey[k] = append(byKey[k], r)
		byID[r.ID] = r
	}
	// The simulator counts effects by the key as sent; UUIDs are one key
	// in any case.
	effects := map[string]int{}
	for k, n := range l.Effects {
		effects[strings.ToLower(k)] += n
	}
	cancelled := map[string]bool{}

	for _, o := range ops {
		rs := byKey[o.key]
		delete(byKey, o.key)
		if n := effects[o.key]; n != len(rs) || n > 1 {
			t.Errorf("request_id %s (%s): %d effects, %d resources; want at most one, and as many resources as effects", o.key, o.kind.name, n, len(rs))
		}
		checkCreate(t, o, rs)
		if o.cancelID == "" {
			continue
		}
		cancelled[o.cancelID] = true
		r, ok := byID[o.cancelID]
		if !ok {
			t.Errorf("%s %s: cancelled, but not in the ledger", o.kind.name, o.cancelID)
			continue
		}
		for _, c := range o.cancels {
			if v := cancelViolation(o, r, c); v != "" {
				t.Error(v)
			}
		}
	}
	for key, rs := range byKey {
		t.Errorf("resources created under idempotency key %q, which no caller sent: %+v", key, rs)
	}
	for _, r := range l.Resources {
		if r.Status == "CANCELLED" && !cancelled[r.ID] {
			t.Errorf("%s %s is CANCELLED, but no caller cancelled it", r.Kind, r.ID)
		}
	}
	checkBalances(t, l, groups)
}

// checkCreate: every caller with an answer got the same one, at least one
// caller (if need be the final retry) got one, and the ledger agrees with
// it: the one resource the callers were told of, or none for a refusal.
// The idempotency-key response metadata is the request_id in canonical
// form whenever it came.
func checkCreate(t *testing.T, o *op, rs []upvestsim.LedgerEntry) {
	t.Helper()
	var answer *outcome
	for _, c := range o.creates {
		if c.keyHeader != "" && c.keyHeader != o.key {
			t.Errorf("request_id %s: idempotency-key metadata %q", o.key, c.keyHeader)
		}
		if !c.answered() {
			continue
		}
		if answer == nil {
			answer = c
		} else if c.code != answer.code || c.id != answer.id {
			t.Errorf("request_id %s (%s): callers got different answers: %v", o.key, o.kind.name, o.creates)
			return
		}
	}
	if answer == nil {
		t.Errorf("request_id %s (%s): no answer, not even for the final retry: %v", o.key, o.kind.name, o.creates)
		return
	}
	switch {
	case answer.code == codes.OK:
		if len(rs) != 1 {
			t.Errorf("request_id %s (%s): callers got %s, the ledger has %d resources: %+v", o.key, o.kind.name, answer.id, len(rs), rs)
			return
		}
		r := rs[0]
		if r.ID != answer.id || r.Kind != o.kind.name || r.AccountGroupID != o.group || r.Amount != o.amount {
			t.Errorf("request_id %s: callers got %s %s (%s in %s), the ledger has %+v", o.key, o.kind.name, answer.id, o.amount, o.group, r)
		}
	case answer.code == codes.FailedPrecondition && o.kind.name == upvestsim.KindWithdrawal:
		// Refused for good (more than the group has): nothing may exist.
		if len(rs) != 0 {
			t.Errorf("request_id %s: callers were told %v, the ledger has %+v", o.key, answer, rs)
		}
	default:
		t.Errorf("request_id %s (%s): unexpected answer %v", o.key, o.kind.name, answer)
	}
}

// cancelViolation is what is wrong with one caller's cancel of r, or "":
// a cancel reported done must have taken effect, and one reported failed
// must not have.
func cancelViolation(o *op, r upvestsim.LedgerEntry, c *outcome) string {
	took := r.Status == "CANCELLED"
	switch {
	case !c.answered():
		return ""
	case c.code == codes.OK && !took:
		return fmt.Sprintf("%s %s: cancel reported done, but it is %s (%v)", o.kind.name, r.ID, r.Status, o.cancels)
	case (c.code == codes.FailedPrecondition || c.code == codes.NotFound) && took:
		return fmt.Sprintf("%s %s: cancel reported failed (%v), but it took effect (%v)", o.kind.name, r.ID, c, o.cancels)
	case c.code != codes.OK && c.code != codes.FailedPrecondition:
		return fmt.Sprintf("%s %s: unexpected cancel answer %v", o.kind.name, r.ID, c)
	}
	return ""
}

// checkBalances: every group's cash balance is what its resources add up
// to, by the simulator's documented balance model, so no money moved that
// the resources do not account for.
func checkBalances(t *testing.T, l upvestsim.Ledger, groups []string) {
	t.Helper()
	type figures struct{ balance, pending, forWithdrawal, forTrading big.Rat }
	want := map[string]*figures{}
	for _, g := range groups {
		want[g] = &figures{}
	}
	for _, r := range l.Resources {
		f := want[r.AccountGroupID]
		if f == nil {
			t.Errorf("%s %s of account group %s, which no caller used", r.Kind, r.ID, r.AccountGroupID)
			continue
		}
		a, ok := new(big.Rat).SetString(r.Amount)
		if !ok {
			t.Errorf("%s %s: amount %q", r.Kind, r.ID, r.Amount)
			continue
		}
		add := func(sign int, figs ...*big.Rat) {
			for _, x := range figs {
				if sign > 0 {
					x.Add(x, a)
				} else {
					x.Sub(x, a)
				}
			}
		}
		switch r.Kind + " " + r.Status {
		case "topup CONFIRMED":
			add(+1, &f.balance, &f.forTrading, &f.pending)
		case "topup SETTLED":
			add(+1, &f.balance, &f.forTrading, &f.forWithdrawal)
		case "direct_debit CONFIRMED":
			add(+1, &f.balance, &f.forTrading, &f.forWithdrawal)
		case "withdrawal NEW", "withdrawal PROCESSING":
			add(-1, &f.forWithdrawal, &f.forTrading)
		case "withdrawal CONFIRMED":
			add(-1, &f.balance, &f.forWithdrawal, &f.forTrading)
		case "virtual_cash_increase CONFIRMED":
			add(+1, &f.balance, &f.forTrading)
		case "virtual_cash_decrease CONFIRMED":
			add(-1, &f.balance, &f.forTrading)
		}
	}
	seen := map[string]bool{}
	for _, b := range l.CashBalances {
		f := want[b.AccountGroupID]
		if f == nil || b.Currency != "EUR" {
			t.Errorf("a balance of account group %s in %s, which no caller used", b.AccountGroupID, b.Currency)
			continue
		}
		seen[b.AccountGroupID] = true
		for _, fig := range []struct {
			name, got string
			want      *big.Rat
		}{
			{"balance", b.Balance, &f.balance},
			{"pending_settlement", b.PendingSettlement, &f.pending},
			{"available_for_withdrawal", b.AvailableForWithdrawal, &f.forWithdrawal},
			{"available_for_trading", b.AvailableForTrading, &f.forTrading},
			{"locked_for_trading", b.LockedForTrading, new(big.Rat)},
		} {
			got, ok := new(big.Rat).SetString(fig.got)
			if !ok || got.Cmp(fig.want) != 0 {
				t.Errorf("account group %s: %s is %s, its resources add up to %s", b.AccountGroupID, fig.name, fig.got, fig.want.FloatString(2))
			}
		}
	}
	for _, g := range groups {
		if !seen[g] {
			t.Errorf("account group %s has no balance", g)
		}
	}
}

// summary counts what happened, for the test log.
func summary(ops []*op) string {
	byKind, answers, cancels := map[string]int{}, map[string]int{}, map[string]int{}
	calls, attempts, gaveUp, finals := 0, 0, 0, 0
	count := func(outs []*outcome, into map[string]int) {
		for _, c := range outs {
			calls++
			attempts += c.attempts
			switch {
			case c.final:
				finals++
				into["final "+c.code.String()]++
			case c.gaveUp:
				gaveUp++
				into["gave up"]++
			default:
				into[c.code.String()]++
			}
		}
	}
	for _, o := range ops {
		byKind[o.kind.name]++
		count(o.creates, answers)
		count(o.cancels, cancels)
	}
	return fmt.Sprintf("%d operations %v; %d calls (%d attempts; %d gave up, %d final retries); creates %v; cancels %v",
		len(ops), sorted(byKind), calls, attempts, gaveUp, finals, sorted(answers), sorted(cancels))
}

// unsettled counts, of the operations no caller got an answer for in the
// run, those that had taken effect before the final retry (which must
// return that effect) and those that had not (the final retry made them,
// or was refused).
func unsettled(before upvestsim.Ledger, ops []*op) string {
	present := map[string]bool{}
	for _, r := range before.Resources {
		present[strings.ToLower(r.IdempotencyKey)] = true
	}
	had, hadNot := 0, 0
	for _, o := range ops {
		answered := false
		for _, c := range o.creates {
			answered = answered || (c.answered() && !c.final)
		}
		switch {
		case answered:
		case present[o.key]:
			had++
		default:
			hadNot++
		}
	}
	return fmt.Sprintf("unanswered in the run: %d had taken effect, %d had not", had, hadNot)
}

func sorted(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return "[" + b.String() + "]"
}
