package upvestsim

import (
	"cmp"
	"maps"
	"slices"
)

// Resource kinds in a Ledger.
const (
	KindVirtualCashIncrease = "virtual_cash_increase"
	KindVirtualCashDecrease = "virtual_cash_decrease"
	KindTopup               = "topup"
	KindDirectDebit         = "direct_debit"
	KindWithdrawal          = "withdrawal"
)

// LedgerEntry is one resource that moves money: what it is, the
// idempotency key of the request that created it, and where it stands.
type LedgerEntry struct {
	Kind           string `json:"kind"`
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
	AccountGroupID string `json:"account_group_id"`
	Amount         string `json:"amount"`
	Currency       string `json:"currency"`
	Status         string `json:"status"`
}

// Ledger is everything the Sim holds that moves money, taken at one
// instant: the resources (each kind in creation order), how many times
// each idempotency key took effect, and every cash balance. A test that
// drove the Sim through faults checks its invariants against it: one
// resource per key, balances that add up.
type Ledger struct {
	Resources []LedgerEntry `json:"resources"`
	// Effects counts, per idempotency key, the creating requests that took
	// effect (see Effects).
	Effects      map[string]int `json:"effects"`
	CashBalances []CashBalance  `json:"cash_balances"` // by account group, then currency
}

// Ledger returns the money-moving state, consistent across its parts.
func (s *Sim) Ledger() Ledger {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := Ledger{Resources: []LedgerEntry{}, Effects: maps.Clone(s.effects), CashBalances: []CashBalance{}}
	for _, v := range s.virtualCash.all {
		kind := KindVirtualCashDecrease
		if v.increase {
			kind = KindVirtualCashIncrease
		}
		j := v.json
		l.Resources = append(l.Resources, LedgerEntry{kind, j.ID, v.key, j.AccountGroupID, j.Amount, j.Currency, j.Status})
	}
	for _, t := range s.topups.all {
		j := t.json
		l.Resources = append(l.Resources, LedgerEntry{KindTopup, j.ID, t.key, j.AccountGroupID, j.CashAmount, j.Currency, j.Status})
	}
	for _, d := range s.directDebits.all {
		j := d.json
		l.Resources = append(l.Resources, LedgerEntry{KindDirectDebit, j.ID, d.key, j.AccountGroupID, j.CashAmount, j.Currency, j.Status})
	}
	for _, w := range s.withdrawals.all {
		j := w.json
		l.Resources = append(l.Resources, LedgerEntry{KindWithdrawal, j.ID, w.key, j.AccountGroupID, j.Amount, j.Currency, j.Status})
	}
	for k, b := range s.balances {
		l.CashBalances = append(l.CashBalances, b.render(k))
	}
	slices.SortFunc(l.CashBalances, func(a, b CashBalance) int {
		return cmp.Or(cmp.Compare(a.AccountGroupID, b.AccountGroupID), cmp.Compare(a.Currency, b.Currency))
	})
	return l
}
