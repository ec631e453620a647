package upstream

import (
	"context"
	"net/http"
)

// Virtual cash balances (scope virtual_cash_balances:admin).

var (
	opCreateVirtualCashIncrease = operation{name: "CreateVirtualCashIncrease", method: http.MethodPost, creates: true}
	opCreateVirtualCashDecrease = operation{name: "CreateVirtualCashDecrease", method: http.MethodPost, creates: true}
	opCancelVirtualCashDecrease = operation{name: "CancelVirtualCashDecrease", method: http.MethodDelete, noContent: true}
)

// CreateVirtualCashIncrease credits virtual cash to an account group
// (POST /virtual_cash_balances/increases; 200 or 202 depending on API version).
func (c *Client) CreateVirtualCashIncrease(ctx context.Context, in VirtualCashRequest, opts ...CallOption) (*VirtualCashIncrease, error) {
	return do[VirtualCashIncrease](ctx, c, &opCreateVirtualCashIncrease, "/virtual_cash_balances/increases", nil, in, opts)
}

// CreateVirtualCashDecrease debits virtual cash from an account group
// (POST /virtual_cash_balances/decreases).
func (c *Client) CreateVirtualCashDecrease(ctx context.Context, in VirtualCashRequest, opts ...CallOption) (*VirtualCashDecrease, error) {
	return do[VirtualCashDecrease](ctx, c, &opCreateVirtualCashDecrease, "/virtual_cash_balances/decreases", nil, in, opts)
}

// CancelVirtualCashDecrease cancels a decrease while it is ISSUED or QUEUED;
// otherwise Upvest answers 422 (DELETE /virtual_cash_balances/decreases/{id}).
func (c *Client) CancelVirtualCashDecrease(ctx context.Context, virtualCashDecreaseID string, opts ...CallOption) error {
	op := &opCancelVirtualCashDecrease
	id, err := segment(op, "virtual_cash_decrease_id", virtualCashDecreaseID)
	if err != nil {
		return err
	}
	return c.call(ctx, op, "/virtual_cash_balances/decreases/"+id, nil, nil, nil, opts)
}
