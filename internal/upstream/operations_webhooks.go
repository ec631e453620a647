package upstream

import (
	"context"
	"net/http"
)

// Webhook subscriptions: where and what Upvest delivers (scope
// webhooks:admin; webhooks:read suffices for reads).

var (
	opCreateWebhook = operation{name: "CreateWebhook", method: http.MethodPost, creates: true}
	opGetWebhook    = operation{name: "GetWebhook", method: http.MethodGet}
	opListWebhooks  = operation{name: "ListWebhooks", method: http.MethodGet}
	opUpdateWebhook = operation{name: "UpdateWebhook", method: http.MethodPatch}
	opDeleteWebhook = operation{name: "DeleteWebhook", method: http.MethodDelete, noContent: true}
)

// CreateWebhook subscribes a URL to event categories (POST /webhooks).
// Upvest may create it disabled: enable it with UpdateWebhook.
func (c *Client) CreateWebhook(ctx context.Context, in CreateWebhookRequest, opts ...CallOption) (*Webhook, error) {
	return do[Webhook](ctx, c, &opCreateWebhook, "/webhooks", nil, in, opts)
}

// GetWebhook reads one subscription (GET /webhooks/{webhook_id}).
func (c *Client) GetWebhook(ctx context.Context, webhookID string, opts ...CallOption) (*Webhook, error) {
	op := &opGetWebhook
	id, err := segment(op, "webhook_id", webhookID)
	if err != nil {
		return nil, err
	}
	return do[Webhook](ctx, c, op, "/webhooks/"+id, nil, nil, opts)
}

// ListWebhooks pages through the tenant's subscriptions (GET /webhooks;
// sort by created_at, updated_at, title, url or enabled).
func (c *Client) ListWebhooks(ctx context.Context, p ListParams, opts ...CallOption) (*List[Webhook], error) {
	op := &opListWebhooks
	q, err := p.query(op)
	if err != nil {
		return nil, err
	}
	return do[List[Webhook]](ctx, c, op, "/webhooks", q, nil, opts)
}

// UpdateWebhook changes the fields set in in (PATCH /webhooks/{webhook_id}).
// Setting the same fields twice changes nothing, so it is retried like a
// read.
func (c *Client) UpdateWebhook(ctx context.Context, webhookID string, in UpdateWebhookRequest, opts ...CallOption) (*Webhook, error) {
	op := &opUpdateWebhook
	id, err := segment(op, "webhook_id", webhookID)
	if err != nil {
		return nil, err
	}
	return do[Webhook](ctx, c, op, "/webhooks/"+id, nil, in, opts)
}

// DeleteWebhook ends a subscription; Upvest drops what it had not yet
// delivered (DELETE /webhooks/{webhook_id}).
func (c *Client) DeleteWebhook(ctx context.Context, webhookID string, opts ...CallOption) error {
	op := &opDeleteWebhook
	id, err := segment(op, "webhook_id", webhookID)
	if err != nil {
		return err
	}
	return c.call(ctx, op, "/webhooks/"+id, nil, nil, nil, opts)
}
