package upvestsim

import (
	"math/big"
	"net/http"
)

// Virtual cash statuses.
const (
	statusIssued    = "ISSUED"
	statusConfirmed = "CONFIRMED"
	statusQueued    = "QUEUED"
	statusCancelled = "CANCELLED"
)

// virtualCashJSON is a virtual cash increase or decrease on the wire.
type virtualCashJSON struct {
	ID             string    `json:"id"`
	CreatedAt      timestamp `json:"created_at"`
	UpdatedAt      timestamp `json:"updated_at"`
	AccountGroupID string    `json:"account_group_id"`
	Amount         string    `json:"amount"`
	Currency       string    `json:"currency"`
	Status         string    `json:"status"`
}

// virtualCash is a virtual cash increase or decrease; fields change under
// Sim.mu only.
type virtualCash struct {
	json     virtualCashJSON
	increase bool
	amount   *big.Int
	key      string // the idempotency key that created it
}

func (v *virtualCash) family() string {
	if v.increase {
		return "VIRTUAL_CASH_INCREASE"
	}
	return "VIRTUAL_CASH_DECREASE"
}

// setStatus moves the resource and announces it; s.mu must be held.
func (v *virtualCash) setStatus(s *Sim, status string) {
	v.json.Status, v.json.UpdatedAt = status, timestamp(s.now())
	s.emit(v.family()+"."+status, v.json)
}

// step: an increase is confirmed (and credited); a decrease is confirmed
// (and debited) when available_for_trading covers it, else queued until it
// does.
func (v *virtualCash) step(s *Sim) (final bool) {
	group, cur := v.json.AccountGroupID, v.json.Currency
	switch {
	case v.increase && v.json.Status == statusIssued:
		v.setStatus(s, statusConfirmed)
		s.moveMoney(group, cur, func(b *balance) {
			b.balance.Add(&b.balance, v.amount)
			b.forTrading.Add(&b.forTrading, v.amount)
		})
	case !v.increase && (v.json.Status == statusIssued || v.json.Status == statusQueued):
		if s.balanceOf(group, cur).forTrading.Cmp(v.amount) < 0 {
			if v.json.Status == statusIssued {
				v.setStatus(s, statusQueued)
			}
			return false
		}
		v.setStatus(s, statusConfirmed)
		s.moveMoney(group, cur, func(b *balance) {
			b.balance.Sub(&b.balance, v.amount)
			b.forTrading.Sub(&b.forTrading, v.amount)
		})
	}
	return v.json.Status == statusConfirmed || v.json.Status == statusCancelled
}

func (s *Sim) createVirtualCashIncrease(c *call) (*reply, error) { return s.createVirtualCash(c, true) }

func (s *Sim) createVirtualCashDecrease(c *call) (*reply, error) {
	return s.createVirtualCash(c, false)
}

// createVirtualCash is POST /virtual_cash_balances/{increases,decreases}.
// It answers 202: the change is only ISSUED, and applied on a later step.
func (s *Sim) createVirtualCash(c *call, increase bool) (*reply, error) {
	req, p := decodeRequest[virtualCashRequest](c.r.Header.Get("Content-Type"), c.body)
	if p != nil {
		return nil, p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := timestamp(s.now())
	v := &virtualCash{
		json: virtualCashJSON{
			ID:             s.ids.uuid(),
			CreatedAt:      now,
			UpdatedAt:      now,
			AccountGroupID: *req.AccountGroupID,
			Amount:         *req.Amount,
			Currency:       *req.Currency,
			Status:         statusIssued,
		},
		increase: increase,
		amount:   mustAmount(*req.Amount),
		key:      c.idemKey,
	}
	s.virtualCash.add(v.json.ID, v)
	s.active = append(s.active, v)
	s.emit(v.family()+"."+statusIssued, v.json)
	rep := jsonReply(http.StatusAccepted, v.json)
	rep.acted = true
	return rep, nil
}

// cancelVirtualCashDecrease is DELETE /virtual_cash_balances/decreases/{id}:
// allowed while ISSUED or QUEUED, when no money has moved yet.
func (s *Sim) cancelVirtualCashDecrease(c *call) (*reply, error) {
	id := c.params["virtual_cash_decrease_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.virtualCash.get(id)
	if !ok || v.increase {
		return nil, notFound("no virtual cash decrease %s", id)
	}
	if v.json.Status != statusIssued && v.json.Status != statusQueued {
		return nil, unprocessable("virtual cash decrease %s is %s; only ISSUED or QUEUED can be cancelled", id, v.json.Status)
	}
	v.setStatus(s, statusCancelled)
	return emptyReply(http.StatusNoContent), nil
}
