package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/upvest-gateway/gateway/internal/idempotency"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// outcome is what the idempotency store keeps of a creating call: Upvest's
// resource, or the gRPC status the call ended with, and the
// upvest-request-id of the answer. Every caller with the key gets exactly
// this back.
type outcome struct {
	Resource  json.RawMessage `json:"resource,omitempty"`
	Status    []byte          `json:"status,omitempty"` // google.rpc.Status, protobuf
	RequestID string          `json:"upvest_request_id,omitempty"`
}

// exactlyOnce runs call under key in the idempotency store. The
// fingerprint is the method and the exact request Upvest gets, so that the
// same request_id with another request is refused rather than answered
// with the first one's result.
func exactlyOnce[B, T any](ctx context.Context, c *backend, key string, body B, call func(context.Context, ...upstream.CallOption) (*T, error)) (*T, error) {
	method, _ := grpc.Method(ctx)
	b, err := json.Marshal(body)
	if err != nil {
		return nil, gatewayStatus(codes.Internal, "INTERNAL", "the request could not be encoded")
	}
	fingerprint := append([]byte(method+"\n"), b...)
	// A wait for another call with the key ends in time to answer
	// OUTCOME_UNKNOWN; the upstream call inside stops shorter still, so
	// its outcome is recorded before that.
	doCtx, cancel := c.answerBy(ctx)
	defer cancel()
	res, err := c.opts.idempotency.Do(doCtx, key, fingerprint, func(ctx context.Context) ([]byte, bool, error) {
		out, info, err := upstreamCall(ctx, c, key, call)
		o := outcome{RequestID: requestIDOf(info, err)}
		if err != nil {
			st := status.Convert(statusFromError(err, info))
			o.Status, _ = proto.Marshal(st.Proto())
		} else if o.Resource, err = json.Marshal(out); err != nil {
			return nil, false, err
		}
		enc, err2 := json.Marshal(o)
		if err2 != nil {
			return nil, false, err2
		}
		return enc, final(err), nil
	})
	if err != nil {
		c.recordStoreError(err)
		return nil, storeError(err, key)
	}
	c.opts.metrics.Idempotency(res.Source.String())
	var o outcome
	if err := json.Unmarshal(res.Outcome, &o); err != nil {
		return nil, gatewayStatus(codes.Internal, "INTERNAL", "the stored outcome of this request_id could not be read")
	}
	setResponseHeader(ctx, "", o.RequestID)
	if o.Status != nil {
		var sp spb.Status
		if err := proto.Unmarshal(o.Status, &sp); err != nil {
			return nil, gatewayStatus(codes.Internal, "INTERNAL", "the stored outcome of this request_id could not be read")
		}
		return nil, status.FromProto(&sp).Err()
	}
	out := new(T)
	if err := json.Unmarshal(o.Resource, out); err != nil {
		return nil, gatewayStatus(codes.Internal, "INTERNAL", "the stored outcome of this request_id could not be read")
	}
	return out, nil
}

// final reports whether a creating call's error is its answer for good, to
// be given to every later call with the key: Upvest answered, and a retry
// would get the same (a success, an invalid request, an unknown account
// group, a refusal such as too little cash). Anything else (throttling,
// outages, unknown outcomes, the gateway's own credentials refused) is not:
// the key is released, and a retry goes upstream again with it.
func final(err error) bool {
	if err == nil {
		return true
	}
	if errors.Is(err, upstream.ErrOutcomeUnknown) {
		return false
	}
	e, ok := upstream.AsError(err)
	if !ok || errors.Is(err, upstream.ErrTokenRequest) {
		return false
	}
	switch e.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// recordStoreError counts the store's refusals that operators watch for.
func (c *backend) recordStoreError(err error) {
	switch {
	case errors.Is(err, idempotency.ErrFingerprintMismatch):
		c.opts.metrics.IdempotencyConflict()
	case errors.Is(err, idempotency.ErrUnavailable):
		c.opts.metrics.IdempotencyUnavailable()
	}
}

// storeError translates the idempotency store's refusals.
func storeError(err error, key string) error {
	switch {
	case errors.Is(err, idempotency.ErrFingerprintMismatch):
		st := status.New(codes.AlreadyExists, "request_id "+key+" was already used for a different request: "+
			"a request_id names one operation; choose a new one for a new operation")
		if d, derr := st.WithDetails(
			&errdetails.ErrorInfo{Reason: "REQUEST_ID_REUSED", Domain: GatewayErrorDomain, Metadata: map[string]string{"request_id": key}},
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
				Field: "request_id", Description: "was already used for a different request",
			}}},
		); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, idempotency.ErrInProgress):
		// The first call with the key is still running: its outcome is
		// unknown to this caller, who settles it by retrying with the key.
		st := status.New(codes.Unavailable, "a call with request_id "+key+" is still in progress; retry with the same request_id to get its outcome")
		if d, derr := st.WithDetails(
			&errdetails.ErrorInfo{Reason: "OUTCOME_UNKNOWN", Domain: GatewayErrorDomain, Metadata: map[string]string{"idempotency_key": key}},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(defaultRetryDelay)},
		); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, idempotency.ErrUnavailable):
		return gatewayStatus(codes.Unavailable, "IDEMPOTENCY_STORE_UNAVAILABLE",
			"the gateway cannot reach its idempotency store, so it does not call Upvest; retry with the same request_id",
			&errdetails.RetryInfo{RetryDelay: durationpb.New(defaultRetryDelay)})
	case errors.Is(err, context.DeadlineExceeded):
		return gatewayStatus(codes.DeadlineExceeded, "DEADLINE_EXCEEDED", "the deadline expired; retry with the same request_id")
	case errors.Is(err, context.Canceled):
		return gatewayStatus(codes.Canceled, "CANCELED", "the call was canceled")
	}
	return gatewayStatus(codes.Internal, "INTERNAL", "the idempotency store failed")
}
