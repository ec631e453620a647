package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// The google.rpc.ErrorInfo domains: Upvest's for the reasons Upvest gave
// (its problem types), the gateway's own for every reason the gateway made
// (validation, timeouts, unknown outcomes, streams).
const (
	UpvestErrorDomain  = "upvest.co"
	GatewayErrorDomain = auth.ErrorDomain
)

// defaultRetryDelay is the RetryInfo of a 429 that named no Retry-After.
const defaultRetryDelay = time.Second

// statusFromError turns an upstream client error into a gRPC status, after
// DESIGN.md's table. Every status carries ErrorInfo (reason, domain and what
// is known of the upstream answer) and, when Upvest answered, RequestInfo
// with the upvest-request-id support needs to trace it. Messages are built
// from the sanitized problem fields, never from raw error text, so nothing
// the client redacted can come back through them.
func statusFromError(err error, info upstream.ResponseInfo) error {
	requestID := info.RequestID
	var (
		code    codes.Code
		msg     string
		reason  string
		domain  = GatewayErrorDomain
		meta    = map[string]string{}
		details []protoadapt.MessageV1
	)
	var (
		ue *upstream.Error
		te *upstream.TransportError
		ou *upstream.OutcomeUnknownError
	)
	switch {
	case errors.As(err, &ou):
		// First: it may also wrap the deadline or an answer, but what the
		// caller must know is that Upvest may have acted.
		code, reason = codes.Unavailable, "OUTCOME_UNKNOWN"
		if ou.IdempotencyKey != "" {
			meta["idempotency_key"] = ou.IdempotencyKey
			msg = "Upvest may or may not have acted on this request: retry it with the same request_id (idempotency-key " +
				ou.IdempotencyKey + "); the retry settles it without acting twice"
		} else {
			msg = "Upvest may or may not have acted on this request: retry it; the retry settles it"
		}
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(defaultRetryDelay)})
	case errors.Is(err, context.DeadlineExceeded):
		code, reason = codes.DeadlineExceeded, "DEADLINE_EXCEEDED"
		msg = "the deadline expired before Upvest answered; a creating call may have taken effect: retry it with the same request_id"
	case errors.Is(err, context.Canceled):
		code, reason = codes.Canceled, "CANCELED"
		msg = "the call was canceled before Upvest answered"
	case errors.As(err, &ue):
		if ue.RequestID != "" {
			requestID = ue.RequestID
		}
		code, msg, details = fromUpstream(ue, errors.Is(err, upstream.ErrTokenRequest))
		reason, domain = upperSnake(ue.ErrorReason()), UpvestErrorDomain
		meta["http_status"] = strconv.Itoa(ue.StatusCode)
		if ue.Type != "" {
			meta["problem_type"] = ue.Type
		}
	case errors.As(err, &te):
		code, reason = codes.Unavailable, "UPSTREAM_UNREACHABLE"
		msg = "Upvest could not be reached; retry (with the same request_id for a creating call)"
		if errors.Is(err, upstream.ErrTokenRequest) {
			msg = "Upvest's token endpoint could not be reached; retry"
		}
	case errors.Is(err, upstream.ErrTokenRequest) && errors.Is(err, upstream.ErrMalformedAnswer):
		// No call was sent: nothing happened, and a retry may well get a
		// readable token.
		code, reason = codes.Unavailable, "UPSTREAM_ANSWER_UNREADABLE"
		msg = "Upvest's token endpoint gave an answer that could not be read; retry"
	case errors.Is(err, upstream.ErrInvalidArgument):
		// Validation runs first, so this is a gap in it; the client's own
		// messages name only the field.
		code, reason = codes.InvalidArgument, "INVALID_ARGUMENT"
		msg = "invalid request"
		if _, after, ok := strings.Cut(err.Error(), upstream.ErrInvalidArgument.Error()+": "); ok {
			msg += ": " + after
		}
	default:
		code, reason = codes.Internal, "INTERNAL"
		msg = "the gateway failed to process Upvest's answer"
	}
	if requestID != "" {
		meta["upvest_request_id"] = requestID
		msg += " (upvest-request-id " + requestID + ")"
	}
	details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: domain, Metadata: meta})
	if requestID != "" {
		details = append(details, &errdetails.RequestInfo{RequestId: requestID})
	}
	st := status.New(code, msg)
	if d, derr := st.WithDetails(details...); derr == nil {
		st = d
	}
	return st.Err()
}

// fromUpstream maps an answered call. tokenRequest marks a failure of the
// OAuth2 token request, where every 4xx means the gateway's own credentials
// are refused.
func fromUpstream(e *upstream.Error, tokenRequest bool) (codes.Code, string, []protoadapt.MessageV1) {
	s := e.StatusCode
	text := fmt.Sprintf("Upvest answered %d %s", s, e.Title)
	if e.Detail != "" {
		text += ": " + e.Detail
	}
	const credentials = "the gateway's Upvest credentials or request signature were refused; this needs the gateway's operator, not a retry"
	switch {
	case tokenRequest && s >= 400 && s < 500 && s != http.StatusTooManyRequests:
		return codes.Internal, fmt.Sprintf("%s (token request: %d %s)", credentials, s, e.Title), nil
	case s == http.StatusBadRequest:
		return codes.InvalidArgument, text, []protoadapt.MessageV1{&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: upstreamField(problemText(e)), Description: problemText(e)}},
		}}
	case s == http.StatusUnauthorized:
		// Whether or not the client already refreshed its token, the caller
		// cannot fix the gateway's credentials: INTERNAL, not UNAUTHENTICATED.
		return codes.Internal, fmt.Sprintf("%s (%d %s)", credentials, s, e.Title), nil
	case s == http.StatusForbidden:
		return codes.PermissionDenied, text + " (the gateway's Upvest client lacks the scope for this operation)", nil
	case s == http.StatusNotFound:
		return codes.NotFound, text, nil
	case s == http.StatusNotAcceptable:
		return codes.Internal, text, nil
	case s == http.StatusConflict:
		return codes.Aborted, text + "; retry with the same request_id", nil
	case s == http.StatusUnprocessableEntity:
		return codes.FailedPrecondition, text, []protoadapt.MessageV1{&errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{{
				Type:        upperSnake(e.ErrorReason()),
				Subject:     UpvestErrorDomain,
				Description: problemText(e),
			}},
		}}
	case s == http.StatusTooManyRequests:
		d := e.RetryAfter
		if d <= 0 {
			d = defaultRetryDelay
		}
		return codes.ResourceExhausted, text, []protoadapt.MessageV1{&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}}
	case s >= 500 && s <= 599:
		var details []protoadapt.MessageV1
		if e.RetryAfter > 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
		}
		return codes.Unavailable, text + "; retry (with the same request_id for a creating call)", details
	case s >= 400 && s <= 499:
		// Any other refusal is of a request the gateway built, not of the caller's input.
		return codes.Internal, text, nil
	default:
		return codes.Unknown, text, nil
	}
}

func problemText(e *upstream.Error) string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Title
}

// upperSnake turns a problem type word such as "not_found" or
// "missing-idempotency-key" into an ErrorInfo reason, which must match
// [A-Z][A-Z0-9_]+[A-Z0-9] and be at most 63 characters.
func upperSnake(word string) string {
	var b strings.Builder
	for _, r := range word {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "_") {
				b.WriteByte('_')
			}
		}
	}
	s := strings.TrimRight(b.String(), "_")
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		s = "UPSTREAM_" + s
	}
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "_")
	}
	return strings.TrimRight(s, "_")
}

// gatewayStatus is a status the gateway makes itself: code and message, and
// ErrorInfo with reason under GatewayErrorDomain, then details.
func gatewayStatus(code codes.Code, reason, msg string, details ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: GatewayErrorDomain}}, details...)...); err == nil {
		st = d
	}
	return st.Err()
}
