package upstream

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// Upvest's own keys (scope webhooks:read).

var opGetVerifyKeys = operation{name: "GetVerifyKeys", method: http.MethodGet}

// GetVerifyKeys fetches the public keys Upvest signs webhook deliveries with,
// by key id (GET /auth/verify_keys, a JWKS).
func (c *Client) GetVerifyKeys(ctx context.Context, opts ...CallOption) (map[string]crypto.PublicKey, error) {
	op := &opGetVerifyKeys
	raw, err := do[json.RawMessage](ctx, c, op, "/auth/verify_keys", nil, nil, opts)
	if err != nil {
		return nil, err
	}
	keys, err := httpsig.ParseJWKS(*raw)
	if err != nil {
		return nil, fmt.Errorf("upvest: %s: %w", op.name, err)
	}
	return keys, nil
}
