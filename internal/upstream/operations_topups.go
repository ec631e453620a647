package upstream

import (
	"context"
	"net/http"
)

// Top-ups (scope topups:admin; topups:read suffices for reads).

var (
	opCreateTopup = operation{name: "CreateTopup", method: http.MethodPost, creates: true}
	opGetTopup    = operation{name: "GetTopup", method: http.MethodGet}
	opListTopups  = operation{name: "ListTopups", method: http.MethodGet}
	opCancelTopup = operation{name: "CancelTopup", method: http.MethodDelete, noContent: true}
)

// CreateTopup tops up an account group's cash (POST /payments/topups).
func (c *Client) CreateTopup(ctx context.Context, in CreateTopupRequest, opts ...CallOption) (*Topup, error) {
	return do[Topup](ctx, c, &opCreateTopup, "/payments/topups", nil, in, opts)
}

// GetTopup reads one top-up (GET /payments/topups/{topup_id}).
func (c *Client) GetTopup(ctx context.Context, topupID string, opts ...CallOption) (*Topup, error) {
	op := &opGetTopup
	id, err := segment(op, "topup_id", topupID)
	if err != nil {
		return nil, err
	}
	return do[Topup](ctx, c, op, "/payments/topups/"+id, nil, nil, opts)
}

// ListTopups pages through an account group's top-ups
// (GET /account_groups/{account_group_id}/payments/topups).
func (c *Client) ListTopups(ctx context.Context, accountGroupID string, p ListParams, opts ...CallOption) (*List[Topup], error) {
	return list[Topup](ctx, c, &opListTopups, accountGroupID, "/payments/topups", p, opts)
}

// CancelTopup cancels a top-up while it is NEW or CONFIRMED; otherwise Upvest
// answers 422 (DELETE /payments/topups/{topup_id}).
func (c *Client) CancelTopup(ctx context.Context, topupID string, opts ...CallOption) error {
	op := &opCancelTopup
	id, err := segment(op, "topup_id", topupID)
	if err != nil {
		return err
	}
	return c.call(ctx, op, "/payments/topups/"+id, nil, nil, nil, opts)
}
