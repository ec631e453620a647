package upvestsim

import (
	"math/big"
	"net/http"
	"time"
)

// Payment statuses shared by top-ups, direct debits and withdrawals.
const (
	statusNew        = "NEW"
	statusProcessing = "PROCESSING"
	statusSettled    = "SETTLED"
)

// topupJSON is a top-up on the wire (it has no updated_at upstream).
type topupJSON struct {
	ID                  string    `json:"id"`
	CreatedAt           timestamp `json:"created_at"`
	AccountGroupID      string    `json:"account_group_id"`
	CashAmount          string    `json:"cash_amount"`
	Currency            string    `json:"currency"`
	Status              string    `json:"status"`
	SettlementReference string    `json:"settlement_reference,omitempty"`
}

func (j topupJSON) listKey() (string, string, time.Time) {
	return j.ID, j.AccountGroupID, j.CreatedAt.time()
}

type topup struct {
	json   topupJSON
	amount *big.Int
	key    string // the idempotency key that created it
}

func (t *topup) wire() topupJSON { return t.json }

func (t *topup) setStatus(s *Sim, status string) {
	t.json.Status = status
	s.emit("TOPUP."+status, t.json)
}

// step settles a confirmed top-up: the money arrived, so it may now leave.
func (t *topup) step(s *Sim) (final bool) {
	if t.json.Status == statusConfirmed {
		t.setStatus(s, statusSettled)
		s.moveMoney(t.json.AccountGroupID, t.json.Currency, func(b *balance) {
			b.pending.Sub(&b.pending, t.amount)
			b.forWithdrawal.Add(&b.forWithdrawal, t.amount)
		})
	}
	return t.json.Status != statusNew && t.json.Status != statusConfirmed
}

// createTopup is POST /payments/topups. A top-up is created CONFIRMED and is
// tradable at once, but pending settlement.
func (s *Sim) createTopup(c *call) (*reply, error) {
	req, p := decodeRequest[topupRequest](c.r.Header.Get("Content-Type"), c.body)
	if p != nil {
		return nil, p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.ids.uuid()
	t := &topup{
		json: topupJSON{
			ID:                  id,
			CreatedAt:           timestamp(s.now()),
			AccountGroupID:      *req.AccountGroupID,
			CashAmount:          *req.CashAmount,
			Currency:            *req.Currency,
			Status:              statusConfirmed,
			SettlementReference: id,
		},
		amount: mustAmount(*req.CashAmount),
		key:    c.idemKey,
	}
	s.topups.add(id, t)
	s.active = append(s.active, t)
	s.emit("TOPUP."+statusConfirmed, t.json)
	s.moveMoney(t.json.AccountGroupID, t.json.Currency, func(b *balance) {
		b.balance.Add(&b.balance, t.amount)
		b.forTrading.Add(&b.forTrading, t.amount)
		b.pending.Add(&b.pending, t.amount)
	})
	rep := jsonReply(http.StatusCreated, t.json)
	rep.acted = true
	return rep, nil
}

// getTopup is GET /payments/topups/{topup_id}.
func (s *Sim) getTopup(c *call) (*reply, error) {
	id := c.params["topup_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topups.get(id)
	if !ok {
		return nil, notFound("no top-up %s", id)
	}
	return jsonReply(http.StatusOK, t.json), nil
}

// listTopups is GET /account_groups/{account_group_id}/payments/topups.
func (s *Sim) listTopups(c *call) (*reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return listPayments(c, &s.topups), nil
}

// cancelTopup is DELETE /payments/topups/{topup_id}: allowed while NEW or
// CONFIRMED, i.e. before the money settled. It reverses the credit.
func (s *Sim) cancelTopup(c *call) (*reply, error) {
	id := c.params["topup_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topups.get(id)
	if !ok {
		return nil, notFound("no top-up %s", id)
	}
	if t.json.Status != statusNew && t.json.Status != statusConfirmed {
		return nil, unprocessable("top-up %s is %s; only NEW or CONFIRMED can be cancelled", id, t.json.Status)
	}
	t.setStatus(s, statusCancelled)
	s.moveMoney(t.json.AccountGroupID, t.json.Currency, func(b *balance) {
		b.balance.Sub(&b.balance, t.amount)
		b.forTrading.Sub(&b.forTrading, t.amount)
		b.pending.Sub(&b.pending, t.amount)
	})
	return emptyReply(http.StatusNoContent), nil
}
