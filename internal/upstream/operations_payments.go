package upstream

import (
	"context"
	"net/http"
)

// Payments: direct debits and withdrawals (scope payments:admin;
// payments:read suffices for reads).

var (
	opCreateDirectDebit = operation{name: "CreateDirectDebit", method: http.MethodPost, creates: true}
	opGetDirectDebit    = operation{name: "GetDirectDebit", method: http.MethodGet}
	opListDirectDebits  = operation{name: "ListDirectDebits", method: http.MethodGet}
	opCreateWithdrawal  = operation{name: "CreateWithdrawal", method: http.MethodPost, creates: true}
	opGetWithdrawal     = operation{name: "GetWithdrawal", method: http.MethodGet}
	opListWithdrawals   = operation{name: "ListWithdrawals", method: http.MethodGet}
	opCancelWithdrawal  = operation{name: "CancelWithdrawal", method: http.MethodDelete, noContent: true}
)

// CreateDirectDebit collects cash from a user's mandate
// (POST /payments/direct_debits).
func (c *Client) CreateDirectDebit(ctx context.Context, in CreateDirectDebitRequest, opts ...CallOption) (*DirectDebit, error) {
	return do[DirectDebit](ctx, c, &opCreateDirectDebit, "/payments/direct_debits", nil, in, opts)
}

// GetDirectDebit reads one direct debit
// (GET /payments/direct_debits/{direct_debit_id}).
func (c *Client) GetDirectDebit(ctx context.Context, directDebitID string, opts ...CallOption) (*DirectDebit, error) {
	op := &opGetDirectDebit
	id, err := segment(op, "direct_debit_id", directDebitID)
	if err != nil {
		return nil, err
	}
	return do[DirectDebit](ctx, c, op, "/payments/direct_debits/"+id, nil, nil, opts)
}

// ListDirectDebits pages through an account group's direct debits
// (GET /account_groups/{account_group_id}/payments/direct_debits).
func (c *Client) ListDirectDebits(ctx context.Context, accountGroupID string, p ListParams, opts ...CallOption) (*List[DirectDebit], error) {
	return list[DirectDebit](ctx, c, &opListDirectDebits, accountGroupID, "/payments/direct_debits", p, opts)
}

// CreateWithdrawal pays cash out to a user's reference account
// (POST /payments/withdrawals).
func (c *Client) CreateWithdrawal(ctx context.Context, in CreateWithdrawalRequest, opts ...CallOption) (*Withdrawal, error) {
	return do[Withdrawal](ctx, c, &opCreateWithdrawal, "/payments/withdrawals", nil, in, opts)
}

// GetWithdrawal reads one withdrawal (GET /payments/withdrawals/{withdrawal_id}).
func (c *Client) GetWithdrawal(ctx context.Context, withdrawalID string, opts ...CallOption) (*Withdrawal, error) {
	op := &opGetWithdrawal
	id, err := segment(op, "withdrawal_id", withdrawalID)
	if err != nil {
		return nil, err
	}
	return do[Withdrawal](ctx, c, op, "/payments/withdrawals/"+id, nil, nil, opts)
}

// ListWithdrawals pages through an account group's withdrawals
// (GET /account_groups/{account_group_id}/payments/withdrawals).
func (c *Client) ListWithdrawals(ctx context.Context, accountGroupID string, p ListParams, opts ...CallOption) (*List[Withdrawal], error) {
	return list[Withdrawal](ctx, c, &opListWithdrawals, accountGroupID, "/payments/withdrawals", p, opts)
}

// CancelWithdrawal cancels a withdrawal while it is NEW; otherwise Upvest
// answers 422 (DELETE /payments/withdrawals/{withdrawal_id}; in the real API,
// not in the seeds).
func (c *Client) CancelWithdrawal(ctx context.Context, withdrawalID string, opts ...CallOption) error {
	op := &opCancelWithdrawal
	id, err := segment(op, "withdrawal_id", withdrawalID)
	if err != nil {
		return err
	}
	return c.call(ctx, op, "/payments/withdrawals/"+id, nil, nil, nil, opts)
}
