package upstream

import (
	"context"
	"net/http"
)

// Cash balances (scope positions:read).

var opGetCashBalance = operation{name: "GetCashBalance", method: http.MethodGet}

// GetCashBalance reads an account group's cash balance
// (GET /account_groups/{account_group_id}/payments/cash_balance).
func (c *Client) GetCashBalance(ctx context.Context, accountGroupID string, opts ...CallOption) (*CashBalance, error) {
	op := &opGetCashBalance
	ag, err := segment(op, "account_group_id", accountGroupID)
	if err != nil {
		return nil, err
	}
	return do[CashBalance](ctx, c, op, "/account_groups/"+ag+"/payments/cash_balance", nil, nil, opts)
}
