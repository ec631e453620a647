package service

import (
	"context"
	"path"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/upvest-gateway/gateway/internal/auth"
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
// with the idempotency key. The key is in the response header metadata from
// the start, so a caller whose call fails or is cut off still has it. With
// an idempotency store (WithIdempotencyStore) the call runs at most once
// per key across all replicas, and every call with the key gets its answer:
// see exactlyOnce.
func create[B, T any](ctx context.Context, c *backend, requestID string, check func(*validator), body B,
	fn func(context.Context, B, ...upstream.CallOption) (*T, error),
) (*T, error) {
	v := c.validator()
	key := v.idempotencyKey(ctx, requestID)
	check(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	setResponseHeader(ctx, key, "")
	call := func(ctx context.Context, o ...upstream.CallOption) (*T, error) { return fn(ctx, body, o...) }
	if c.opts.idempotency == nil {
		return invoke(ctx, c, key, call)
	}
	return exactlyOnce(ctx, c, key, body, call)
}

// resource is an Upvest resource: it belongs to an account group.
type resource[T any] interface {
	*T
	AccountGroup() string
}

// get reads one resource by its id, named field in the request, and returns
// it if the caller may use its account group.
func get[T any, P resource[T]](ctx context.Context, c *backend, field, id string,
	fn func(context.Context, string, ...upstream.CallOption) (P, error),
) (P, error) {
	v := c.validator()
	v.id(field, id)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := invoke(ctx, c, "", func(ctx context.Context, o ...upstream.CallOption) (P, error) {
		return fn(ctx, id, o...)
	})
	if err != nil {
		return nil, err
	}
	if err := auth.CheckAccountGroup(ctx, r.AccountGroup()); err != nil {
		return nil, err
	}
	return r, nil
}

// cancelChecks are how a cancel learns what it must know of its resource;
// a nil func is a question that cannot be answered.
type cancelChecks struct {
	// accountGroup of the resource, for callers held to some account groups.
	accountGroup func(ctx context.Context, id string) (string, error)
	// cancelled reports whether the resource is cancelled, once Upvest
	// refused a cancel of it.
	cancelled func(ctx context.Context, id string) (bool, error)
}

// readChecks are the checks of a resource Upvest can read, through its read.
func readChecks[T any, P interface {
	resource[T]
	GetStatus() string
}](c *backend, read func(context.Context, string, ...upstream.CallOption) (P, error)) cancelChecks {
	get := func(ctx context.Context, id string) (P, error) {
		return invoke(ctx, c, "", func(ctx context.Context, o ...upstream.CallOption) (P, error) { return read(ctx, id, o...) })
	}
	return cancelChecks{
		accountGroup: func(ctx context.Context, id string) (string, error) {
			r, err := get(ctx, id)
			if err != nil {
				return "", err
			}
			return r.AccountGroup(), nil
		},
		cancelled: func(ctx context.Context, id string) (bool, error) {
			r, err := get(ctx, id)
			return err == nil && r.GetStatus() == upstream.StatusCancelled, err
		},
	}
}

// cancel cancels one resource by its id, named field in the request.
//
// A caller held to some account groups gets the resource's account group
// checked first, and the cancel only if it is one of theirs.
//
// Upvest answers 422 to a cancel of a resource that can no longer be
// cancelled, which is also what the retry of a cancel that took effect
// meets (its answer lost on the way), and what a caller's second cancel
// meets: so a 422 is checked against the resource itself, and one that is
// CANCELLED is a cancel that succeeded.
func cancel(ctx context.Context, c *backend, field, id string,
	fn func(context.Context, string, ...upstream.CallOption) error, checks cancelChecks,
) error {
	v := c.validator()
	v.id(field, id)
	if err := v.err(); err != nil {
		return err
	}
	if auth.Restricted(ctx) {
		if checks.accountGroup == nil {
			method, _ := grpc.Method(ctx)
			return gatewayStatus(codes.PermissionDenied, "ACCOUNT_GROUP_UNKNOWN",
				path.Base(method)+": this caller may use only some account groups, and the gateway cannot tell which one this resource belongs to")
		}
		ag, err := checks.accountGroup(ctx, id)
		if err != nil {
			return err
		}
		if err := auth.CheckAccountGroup(ctx, ag); err != nil {
			return err
		}
	}
	_, err := invoke(ctx, c, "", func(ctx context.Context, o ...upstream.CallOption) (struct{}, error) {
		return struct{}{}, fn(ctx, id, o...)
	})
	if checks.cancelled == nil || status.Code(err) != codes.FailedPrecondition {
		return err
	}
	switch done, cerr := checks.cancelled(ctx, id); {
	case cerr != nil:
		// Not known whether the cancel took effect: say so rather than
		// report a refusal that may be wrong.
		return gatewayStatus(codes.Unavailable, "OUTCOME_UNKNOWN",
			"Upvest refused the cancel, and whether an earlier attempt took effect could not be checked: retry the cancel",
			&errdetails.RetryInfo{RetryDelay: durationpb.New(defaultRetryDelay)})
	case done:
		return nil
	}
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

// invoke makes the upstream call (see upstreamCall), returns the
// upvest-request-id in the response header metadata whatever the outcome,
// and translates a failure into a gRPC status.
func invoke[T any](ctx context.Context, c *backend, key string, fn func(context.Context, ...upstream.CallOption) (T, error)) (T, error) {
	out, info, err := upstreamCall(ctx, c, key, fn)
	setResponseHeader(ctx, "", requestIDOf(info, err))
	if err != nil {
		var zero T
		return zero, statusFromError(err, info)
	}
	return out, nil
}

// upstreamCall makes the upstream call with the RPC's configured call
// options, key (if any) as its idempotency key and the method's default
// deadline if the caller brought none. Its error is the upstream client's.
func upstreamCall[T any](ctx context.Context, c *backend, key string, fn func(context.Context, ...upstream.CallOption) (T, error)) (T, upstream.ResponseInfo, error) {
	var info upstream.ResponseInfo
	method, _ := grpc.Method(ctx)
	ctx, cancel := c.answerBy(ctx)
	defer cancel()
	opts := append(c.opts.callOptions(method), upstream.WithResponseInfo(&info))
	if key != "" {
		opts = append(opts, upstream.WithIdempotencyKey(key))
	}
	out, err := fn(ctx, opts...)
	return out, info, err
}

// answerBy bounds the work of a call: it stops short of the caller's
// deadline, so the answer (above all an OUTCOME_UNKNOWN with the key to
// retry with) reaches the caller before it gives up by itself; a call that
// brings no deadline gets the method's default.
func (c *backend) answerBy(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-answerMargin(time.Until(dl))))
	}
	method, _ := grpc.Method(ctx)
	return context.WithTimeout(ctx, c.opts.timeout(method))
}

// requestIDOf is the upvest-request-id of a call's last answer.
func requestIDOf(info upstream.ResponseInfo, err error) string {
	if e, ok := upstream.AsError(err); ok && e.RequestID != "" {
		// A failed token request has its own upvest-request-id.
		return e.RequestID
	}
	return info.RequestID
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
		// Fails only outside a gRPC handler (a direct call in a test), or
		// once the header is sent (a stream's second upstream read), where
		// there is no header left to set.
		_ = grpc.SetHeader(ctx, md)
	}
}

// answerMargin is how long before the caller's deadline the upstream work
// ends: a tenth of the time left, between 20 ms and 1 s.
func answerMargin(left time.Duration) time.Duration {
	return min(max(left/10, 20*time.Millisecond), time.Second)
}
