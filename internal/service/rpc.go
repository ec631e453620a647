package service

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/upvest-gateway/gateway/internal/upstream"
)

// backend is what every service shares: the Upvest client it calls and
// the options it was built with.
type backend struct {
	client *upstream.Client
	opts   options
}

func newBackend(c *upstream.Client, opts []Option) backend {
	return backend{client: c, opts: newOptions(opts)}
}

// The generic steps behind the handlers. Each runs validate → call →
// translate, so a handler is only its field checks and its mapping.

// create runs a creating call: request_id (or the Idempotency-Key header)
// and the fields checked by check are validated together, then body is sent
// with the idempotency key.
func create[B, T any](ctx context.Context, c *backend, requestID string, check func(*validator), body B,
	fn func(context.Context, B, ...upstream.CallOption) (*T, error),
) (*T, error) {
	v := c.validator()
	key := v.idempotencyKey(ctx, requestID)
	check(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return invoke(ctx, c, key, func(ctx context.Context, o ...upstream.CallOption) (*T, error) {
		return fn(ctx, body, o...)
	})
}

// get reads one resource by its id, named field in the request.
func get[T any](ctx context.Context, c *backend, field, id string,
	fn func(context.Context, string, ...upstream.CallOption) (*T, error),
) (*T, error) {
	v := c.validator()
	v.id(field, id)
	if err := v.err(); err != nil {
		return nil, err
	}
	return invoke(ctx, c, "", func(ctx context.Context, o ...upstream.CallOption) (*T, error) {
		return fn(ctx, id, o...)
	})
}

// cancel deletes (cancels) one resource by its id, named field in the request.
func cancel(ctx context.Context, c *backend, field, id string,
	fn func(context.Context, string, ...upstream.CallOption) error,
) error {
	v := c.validator()
	v.id(field, id)
	if err := v.err(); err != nil {
		return err
	}
	_, err := invoke(ctx, c, "", func(ctx context.Context, o ...upstream.CallOption) (struct{}, error) {
		return struct{}{}, fn(ctx, id, o...)
	})
	return err
}

// list reads one page of an account group's resources and converts it.
func list[T, P any](ctx context.Context, c *backend, req listRequest,
	fn func(context.Context, string, upstream.ListParams, ...upstream.CallOption) (*upstream.List[T], error),
	conv func(*T) P,
) (page[P], error) {
	v := c.validator()
	params, scope := listParams(v, req)
	if err := v.err(); err != nil {
		return page[P]{}, err
	}
	l, err := invoke(ctx, c, "", func(ctx context.Context, o ...upstream.CallOption) (*upstream.List[T], error) {
		return fn(ctx, req.GetAccountGroupId(), params, o...)
	})
	if err != nil {
		return page[P]{}, err
	}
	return nextPage(l, params.Offset, scope, conv), nil
}

// invoke makes the upstream call with the RPC's configured call options and
// key (if any) as its idempotency key, returns the key and the
// upvest-request-id in the response header metadata whatever the outcome, and
// translates a failure into a gRPC status.
func invoke[T any](ctx context.Context, c *backend, key string, fn func(context.Context, ...upstream.CallOption) (T, error)) (T, error) {
	var info upstream.ResponseInfo
	method, _ := grpc.Method(ctx)
	opts := append(c.opts.callOptions(method), upstream.WithResponseInfo(&info))
	if key != "" {
		opts = append(opts, upstream.WithIdempotencyKey(key))
	}
	out, err := fn(ctx, opts...)
	requestID := info.RequestID
	if e, ok := upstream.AsError(err); ok && e.RequestID != "" {
		// A failed token request has its own upvest-request-id.
		requestID = e.RequestID
	}
	setResponseHeader(ctx, key, requestID)
	if err != nil {
		var zero T
		return zero, statusFromError(err, info)
	}
	return out, nil
}

func setResponseHeader(ctx context.Context, key, requestID string) {
	md := metadata.MD{}
	if key != "" {
		md.Set(IdempotencyKeyMetadata, key)
	}
	if requestID != "" {
		md.Set(UpvestRequestIDMetadata, requestID)
	}
	if len(md) > 0 {
		// Fails only outside a gRPC handler (a direct call in a test), where
		// there is no header to set.
		_ = grpc.SetHeader(ctx, md)
	}
}
