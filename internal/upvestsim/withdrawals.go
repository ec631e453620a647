package upvestsim

import (
	"math/big"
	"net/http"
	"time"
)

// withdrawalJSON is a withdrawal on the wire.
type withdrawalJSON struct {
	ID                    string    `json:"id"`
	CreatedAt             timestamp `json:"created_at"`
	UpdatedAt             timestamp `json:"updated_at"`
	ReferenceAccountID    string    `json:"reference_account_id"`
	AccountGroupID        string    `json:"account_group_id"`
	UserID                string    `json:"user_id"`
	Amount                string    `json:"amount"`
	Currency              string    `json:"currency"`
	RemittanceInformation string    `json:"remittance_information"`
	Status                string    `json:"status"`
}

func (j withdrawalJSON) listKey() (string, string, time.Time) {
	return j.ID, j.AccountGroupID, j.CreatedAt.time()
}

type withdrawal struct {
	json   withdrawalJSON
	amount *big.Int
	key    string // the idempotency key that created it
}

func (w *withdrawal) wire() withdrawalJSON { return w.json }

func (w *withdrawal) setStatus(s *Sim, status string) {
	w.json.Status, w.json.UpdatedAt = status, timestamp(s.now())
	s.emit("WITHDRAWAL."+status, w.json)
}

// step: NEW → PROCESSING → CONFIRMED; the reserved money leaves the balance
// on confirmation.
func (w *withdrawal) step(s *Sim) (final bool) {
	switch w.json.Status {
	case statusNew:
		w.setStatus(s, statusProcessing)
	case statusProcessing:
		w.setStatus(s, statusConfirmed)
		s.moveMoney(w.json.AccountGroupID, w.json.Currency, func(b *balance) {
			b.balance.Sub(&b.balance, w.amount)
		})
	}
	return w.json.Status == statusConfirmed || w.json.Status == statusCancelled
}

// createWithdrawal is POST /payments/withdrawals. The amount must be
// available for withdrawal (else 422) and is reserved at once, so two
// withdrawals cannot spend the same money.
func (s *Sim) createWithdrawal(c *call) (*reply, error) {
	req, p := decodeRequest[withdrawalRequest](c.r.Header.Get("Content-Type"), c.body)
	if p != nil {
		return nil, p
	}
	amount := mustAmount(*req.Amount)
	s.mu.Lock()
	defer s.mu.Unlock()
	if avail := &s.balanceOf(*req.AccountGroupID, defaultCurrency).forWithdrawal; avail.Cmp(amount) < 0 {
		return nil, unprocessable("amount %s exceeds available_for_withdrawal %s", *req.Amount, formatDecimal(avail))
	}
	now := timestamp(s.now())
	w := &withdrawal{
		json: withdrawalJSON{
			ID:                    s.ids.uuid(),
			CreatedAt:             now,
			UpdatedAt:             now,
			ReferenceAccountID:    *req.ReferenceAccountID,
			AccountGroupID:        *req.AccountGroupID,
			UserID:                *req.UserID,
			Amount:                *req.Amount,
			Currency:              defaultCurrency,
			RemittanceInformation: deref(req.RemittanceInformation),
			Status:                statusNew,
		},
		amount: amount,
		key:    c.idemKey,
	}
	s.withdrawals.add(w.json.ID, w)
	s.active = append(s.active, w)
	s.emit("WITHDRAWAL."+statusNew, w.json)
	s.moveMoney(w.json.AccountGroupID, w.json.Currency, func(b *balance) {
		b.forWithdrawal.Sub(&b.forWithdrawal, amount)
		b.forTrading.Sub(&b.forTrading, amount)
	})
	rep := jsonReply(http.StatusCreated, w.json)
	rep.acted = true
	return rep, nil
}

// getWithdrawal is GET /payments/withdrawals/{withdrawal_id}.
func (s *Sim) getWithdrawal(c *call) (*reply, error) {
	id := c.params["withdrawal_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.withdrawals.get(id)
	if !ok {
		return nil, notFound("no withdrawal %s", id)
	}
	return jsonReply(http.StatusOK, w.json), nil
}

// listWithdrawals is GET /account_groups/{account_group_id}/payments/withdrawals.
func (s *Sim) listWithdrawals(c *call) (*reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return listPayments(c, &s.withdrawals), nil
}

// cancelWithdrawal is DELETE /payments/withdrawals/{withdrawal_id}: allowed
// while NEW, releasing the reserve.
func (s *Sim) cancelWithdrawal(c *call) (*reply, error) {
	id := c.params["withdrawal_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.withdrawals.get(id)
	if !ok {
		return nil, notFound("no withdrawal %s", id)
	}
	if w.json.Status != statusNew {
		return nil, unprocessable("withdrawal %s is %s; only NEW can be cancelled", id, w.json.Status)
	}
	w.setStatus(s, statusCancelled)
	s.moveMoney(w.json.AccountGroupID, w.json.Currency, func(b *balance) {
		b.forWithdrawal.Add(&b.forWithdrawal, w.amount)
		b.forTrading.Add(&b.forTrading, w.amount)
	})
	return emptyReply(http.StatusNoContent), nil
}
