package upstream

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
)

// Helpers shared by the operations_*.go files: one path segment per id, and
// the paging query of list calls. Both refuse bad input before any request.

// segment escapes id as exactly one path segment, so no id can reach another
// resource ("a/b", "..").
func segment(op *operation, field, id string) (string, error) {
	switch id {
	case "":
		return "", fmt.Errorf("upvest: %s: %w: %s is required", op.name, ErrInvalidArgument, field)
	case ".", "..":
		return "", fmt.Errorf("upvest: %s: %w: %s %q is not an id", op.name, ErrInvalidArgument, field, id)
	}
	return url.PathEscape(id), nil
}

// maxListLimit is the upstream's largest page.
const maxListLimit = 1000

// query is the list query: only what is set, so the upstream defaults apply
// to the rest.
func (p ListParams) query(op *operation) (url.Values, error) {
	if p.Limit < 0 || p.Limit > maxListLimit {
		return nil, fmt.Errorf("upvest: %s: %w: limit %d is outside 0..%d", op.name, ErrInvalidArgument, p.Limit, maxListLimit)
	}
	if p.Offset < 0 {
		return nil, fmt.Errorf("upvest: %s: %w: offset %d is negative", op.name, ErrInvalidArgument, p.Offset)
	}
	q := make(url.Values, 4)
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Offset > 0 {
		q.Set("offset", strconv.Itoa(p.Offset))
	}
	if p.Sort != "" {
		q.Set("sort", p.Sort)
	}
	if p.Order != "" {
		q.Set("order", p.Order)
	}
	return q, nil
}

// list is GET {prefix}{account group}{suffix}?paging, shared by the list calls.
func list[T any](ctx context.Context, c *Client, op *operation, accountGroupID, suffix string, p ListParams, opts []CallOption) (*List[T], error) {
	ag, err := segment(op, "account_group_id", accountGroupID)
	if err != nil {
		return nil, err
	}
	q, err := p.query(op)
	if err != nil {
		return nil, err
	}
	return do[List[T]](ctx, c, op, "/account_groups/"+ag+suffix, q, nil, opts)
}
