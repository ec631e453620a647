package upvestsim

import (
	"fmt"
	"math/big"
	"net/http"
	"strings"
)

// CashBalance is an account group's cash balance as the API renders it
// (GET .../payments/cash_balance and CASH_BALANCE.UPDATED): decimal strings.
type CashBalance struct {
	AccountGroupID         string `json:"account_group_id"`
	Currency               string `json:"currency"`
	Balance                string `json:"balance"`
	LockedForTrading       string `json:"locked_for_trading"`
	PendingSettlement      string `json:"pending_settlement"`
	AvailableForWithdrawal string `json:"available_for_withdrawal"`
	AvailableForTrading    string `json:"available_for_trading"`
}

type balanceKey struct{ group, currency string }

// balance holds the five figures in 10^-27 units. Each big.Int is owned by
// its balance and only changed under Sim.mu.
type balance struct {
	balance, locked, pending, forWithdrawal, forTrading big.Int
}

func (b *balance) render(k balanceKey) CashBalance {
	return CashBalance{
		AccountGroupID:         k.group,
		Currency:               k.currency,
		Balance:                formatDecimal(&b.balance),
		LockedForTrading:       formatDecimal(&b.locked),
		PendingSettlement:      formatDecimal(&b.pending),
		AvailableForWithdrawal: formatDecimal(&b.forWithdrawal),
		AvailableForTrading:    formatDecimal(&b.forTrading),
	}
}

// balanceOf returns the balance of a group in a currency, starting at zero;
// s.mu must be held.
func (s *Sim) balanceOf(group, currency string) *balance {
	k := balanceKey{group, currency}
	b := s.balances[k]
	if b == nil {
		b = &balance{}
		s.balances[k] = b
	}
	return b
}

// moveMoney applies a money movement and announces the new balance; s.mu
// must be held. Every balance change goes through here, so none can miss
// its CASH_BALANCE.UPDATED event.
func (s *Sim) moveMoney(group, currency string, change func(b *balance)) {
	b := s.balanceOf(group, currency)
	change(b)
	s.emit("CASH_BALANCE.UPDATED", b.render(balanceKey{group, currency}))
}

// CashBalance is the current balance of an account group in the default
// currency (all zero for an unknown group).
func (s *Sim) CashBalance(accountGroupID string) CashBalance {
	k := balanceKey{strings.ToLower(accountGroupID), defaultCurrency}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.balances[k]; b != nil {
		return b.render(k)
	}
	return (&balance{}).render(k)
}

// SetCashBalance seeds a balance for tests, replacing the current figures.
// Empty figures mean zero and an empty currency the default one. Like any
// balance change it emits CASH_BALANCE.UPDATED.
func (s *Sim) SetCashBalance(cb CashBalance) error {
	if !uuidPattern.MatchString(cb.AccountGroupID) {
		return fmt.Errorf("upvestsim: account_group_id %q is not a UUID", cb.AccountGroupID)
	}
	cb.AccountGroupID = strings.ToLower(cb.AccountGroupID)
	if cb.Currency == "" {
		cb.Currency = defaultCurrency
	}
	if !isSupportedCurrency(cb.Currency) {
		return fmt.Errorf("upvestsim: currency %q is not supported", cb.Currency)
	}
	var next balance
	for _, f := range []struct {
		name, value string
		dst         *big.Int
		nonNegative bool
	}{
		{"balance", cb.Balance, &next.balance, false},
		{"locked_for_trading", cb.LockedForTrading, &next.locked, true},
		{"pending_settlement", cb.PendingSettlement, &next.pending, true},
		{"available_for_withdrawal", cb.AvailableForWithdrawal, &next.forWithdrawal, false},
		{"available_for_trading", cb.AvailableForTrading, &next.forTrading, false},
	} {
		if f.value == "" {
			continue
		}
		v, err := parseBalance(f.value, f.nonNegative)
		if err != nil {
			return fmt.Errorf("upvestsim: %s: %w", f.name, err)
		}
		f.dst.Set(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moveMoney(cb.AccountGroupID, cb.Currency, func(b *balance) {
		b.balance.Set(&next.balance)
		b.locked.Set(&next.locked)
		b.pending.Set(&next.pending)
		b.forWithdrawal.Set(&next.forWithdrawal)
		b.forTrading.Set(&next.forTrading)
	})
	return nil
}

// parseBalance parses a figure in the upstream balance format.
func parseBalance(s string, nonNegative bool) (*big.Int, error) {
	if !balancePattern.MatchString(s) {
		return nil, fmt.Errorf("%q does not match %s", s, balancePattern)
	}
	v, err := parseDecimal(s)
	if err != nil {
		return nil, err
	}
	if nonNegative && v.Sign() < 0 {
		return nil, fmt.Errorf("%q must not be negative", s)
	}
	return v, nil
}

// getCashBalance is GET /account_groups/{account_group_id}/payments/cash_balance.
func (s *Sim) getCashBalance(c *call) (*reply, error) {
	return jsonReply(http.StatusOK, s.CashBalance(c.params["account_group_id"])), nil
}
