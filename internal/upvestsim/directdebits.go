package upvestsim

import (
	"math/big"
	"net/http"
	"time"
)

// directDebitJSON is a direct debit on the wire (no updated_at upstream).
type directDebitJSON struct {
	ID                    string    `json:"id"`
	CreatedAt             timestamp `json:"created_at"`
	UserID                string    `json:"user_id"`
	AccountGroupID        string    `json:"account_group_id"`
	MandateID             string    `json:"mandate_id"`
	CashAmount            string    `json:"cash_amount"`
	Currency              string    `json:"currency"`
	RemittanceInformation string    `json:"remittance_information,omitempty"`
	Status                string    `json:"status"`
}

func (j directDebitJSON) listKey() (string, string, time.Time) {
	return j.ID, j.AccountGroupID, j.CreatedAt.time()
}

type directDebit struct {
	json   directDebitJSON
	amount *big.Int
	key    string // the idempotency key that created it
}

func (d *directDebit) wire() directDebitJSON { return d.json }

func (d *directDebit) setStatus(s *Sim, status string) {
	d.json.Status = status
	s.emit("DIRECT_DEBIT."+status, d.json)
}

// step: NEW → PROCESSING → CONFIRMED; the money is collected, so settled,
// on confirmation.
func (d *directDebit) step(s *Sim) (final bool) {
	switch d.json.Status {
	case statusNew:
		d.setStatus(s, statusProcessing)
	case statusProcessing:
		d.setStatus(s, statusConfirmed)
		s.moveMoney(d.json.AccountGroupID, d.json.Currency, func(b *balance) {
			b.balance.Add(&b.balance, d.amount)
			b.forTrading.Add(&b.forTrading, d.amount)
			b.forWithdrawal.Add(&b.forWithdrawal, d.amount)
		})
	}
	return d.json.Status == statusConfirmed || d.json.Status == statusCancelled
}

// createDirectDebit is POST /payments/direct_debits.
func (s *Sim) createDirectDebit(c *call) (*reply, error) {
	req, p := decodeRequest[directDebitRequest](c.r.Header.Get("Content-Type"), c.body)
	if p != nil {
		return nil, p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &directDebit{
		json: directDebitJSON{
			ID:                    s.ids.uuid(),
			CreatedAt:             timestamp(s.now()),
			UserID:                *req.UserID,
			AccountGroupID:        *req.AccountGroupID,
			MandateID:             *req.MandateID,
			CashAmount:            *req.CashAmount,
			Currency:              defaultCurrency,
			RemittanceInformation: deref(req.RemittanceInformation),
			Status:                statusNew,
		},
		amount: mustAmount(*req.CashAmount),
		key:    c.idemKey,
	}
	s.directDebits.add(d.json.ID, d)
	s.active = append(s.active, d)
	s.emit("DIRECT_DEBIT."+statusNew, d.json)
	rep := jsonReply(http.StatusCreated, d.json)
	rep.acted = true
	return rep, nil
}

// getDirectDebit is GET /payments/direct_debits/{direct_debit_id}.
func (s *Sim) getDirectDebit(c *call) (*reply, error) {
	id := c.params["direct_debit_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.directDebits.get(id)
	if !ok {
		return nil, notFound("no direct debit %s", id)
	}
	return jsonReply(http.StatusOK, d.json), nil
}

// listDirectDebits is GET /account_groups/{account_group_id}/payments/direct_debits.
func (s *Sim) listDirectDebits(c *call) (*reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return listPayments(c, &s.directDebits), nil
}
