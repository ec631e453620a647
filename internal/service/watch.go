package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
)

// The shared steps of the Watch* streaming RPCs. Each RPC lives in its
// service's file and is validate → watch → send: its filter is checked here,
// the subscription to the event log runs in watch, and the way it ends is
// translated into a gRPC status by watchStatus.
//
// An event whose object cannot be decoded into the upstream resource is sent
// all the same, with its id, type and created_at and the typed object unset,
// and logged. Dropping it would leave a silent gap in the stream, and ending
// the stream would end it again on every resume: the subscriber is better
// served by the event and a Get call for the resource.
//
// A subscriber too slow for its buffer is ended with RESOURCE_EXHAUSTED as
// soon as its current Send returns (events.WithStallTimeout). A gRPC client
// that stops reading altogether blocks that Send once HTTP/2 flow control
// is exhausted, so it holds its stream (and no more than its window and
// buffer) until it reads again or its connection dies; it never holds up
// ingest or other subscribers. The REST face bounds each write instead.
//
// An event's message is encoded once for all the subscribers that receive
// it alike (sendShared) and sent as a grpc.PreparedMsg: a stream
// interceptor that looks at the messages sent sees that type, not the
// response.

// maxResumeTokenLen bounds resume_token before it reaches the log; the
// tokens the gateway issues are a few dozen characters.
const maxResumeTokenLen = 256

// eventTypes maps one Watch RPC's event type enum onto upstream event types.
type eventTypes[E ~int32] struct {
	families    []string // the upstream event families of the RPC
	unspecified string   // name of the zero value, for messages
	byEnum      map[E]string
	byType      map[string]E
}

func newEventTypes[E ~int32](unspecified string, m map[E]string) *eventTypes[E] {
	t := &eventTypes[E]{unspecified: unspecified, byEnum: m, byType: make(map[string]E, len(m))}
	for e, typ := range m {
		t.byType[typ] = e
		if fam, _, _ := strings.Cut(typ, "."); !slices.Contains(t.families, fam) {
			t.families = append(t.families, fam)
		}
	}
	slices.Sort(t.families)
	return t
}

// of is the enum value of an upstream type; a status Upvest added after this
// version is the UNSPECIFIED zero value, as for resource statuses.
func (t *eventTypes[E]) of(upstreamType string) E { return t.byType[upstreamType] }

// filter checks an RPC's optional filters and returns the log filter. No
// event types means every event of the RPC's families, including those of
// statuses this version does not know yet.
func (t *eventTypes[E]) filter(v *validator, accountGroupID string, types []E) events.Filter {
	if accountGroupID != "" && !uuidPattern.MatchString(accountGroupID) {
		v.add("account_group_id", "must be empty (every account group) or a UUID (8-4-4-4-12 hexadecimal digits)")
	}
	f := events.Filter{AccountGroupID: accountGroupID}
	for i, e := range types {
		typ, ok := t.byEnum[e]
		if !ok {
			v.add(fmt.Sprintf("event_types[%d]", i), "must be a defined event type other than "+t.unspecified)
			continue
		}
		f.Types = append(f.Types, typ)
	}
	if len(types) == 0 {
		f.Families = t.families
	}
	return f
}

// resumeToken checks the size of a resume token; whether the log issued it
// is for the log to say.
func (v *validator) resumeToken(field, token string) {
	if len(token) > maxResumeTokenLen {
		v.add(field, "must be the resume_token of a message of an earlier stream")
	}
}

// watchEvents is the whole of an event Watch RPC but its messages: check
// the filters and the token, then stream; response makes the message for a
// token and an event (nil for a heartbeat).
func watchEvents[E ~int32, R proto.Message](stream grpc.ServerStream, c *backend, t *eventTypes[E], accountGroupID string, types []E, token string,
	response func(token string, ev *events.Event) R,
) error {
	ctx := stream.Context()
	if err := c.watchAvailable(ctx); err != nil {
		return err
	}
	v := c.validator()
	f := t.filter(v, accountGroupID, types)
	v.resumeToken("resume_token", token)
	if err := v.err(); err != nil {
		return err
	}
	kind := responseKind(ctx)
	return c.watch(ctx, f, token, func(m events.Message) error {
		return sendShared(stream, kind, m, func() proto.Message { return response(m.Token, m.Event) })
	})
}

// sendShared sends m's response, encoding it (decoding the event's object,
// converting, marshalling) once for every subscriber that receives the same
// bytes: a thousand unfiltered subscribers of an event cost one encoding,
// not a thousand. The encoded message is a grpc.PreparedMsg, which carries
// the codec and compression of the stream that encoded it, hence the codec
// in the key.
func sendShared(stream grpc.ServerStream, kind string, m events.Message, response func() proto.Message) error {
	if m.Event == nil {
		return stream.SendMsg(response())
	}
	prepared, err := m.Memo(kind, func() (any, error) {
		p := &grpc.PreparedMsg{}
		if err := p.Encode(stream, response()); err != nil {
			return nil, err
		}
		return p, nil
	})
	if err != nil {
		return err
	}
	if err := stream.SendMsg(prepared); err != nil {
		return err
	}
	sentTokenRecorder(stream.Context())(m.Token)
	return nil
}

// responseKind is what decides a stream's messages besides the event and
// the token: the RPC, the content type (its codec) and the compression the
// client asked for.
func responseKind(ctx context.Context) string {
	method, _ := grpc.Method(ctx)
	md, _ := metadata.FromIncomingContext(ctx)
	return method + ";" + strings.Join(md.Get("content-type"), ",") + ";" + strings.Join(md.Get("grpc-encoding"), ",")
}

// watchAvailable is UNIMPLEMENTED when the gateway runs without an event log.
func (c *backend) watchAvailable(ctx context.Context) error {
	if c.opts.events != nil {
		return nil
	}
	method, _ := grpc.Method(ctx)
	return status.Error(codes.Unimplemented, path.Base(method)+" is not available: the gateway runs without an event log")
}

// watch subscribes to the event log and calls send with every message until
// the stream ends, and returns how it ended as a gRPC status. send's own
// errors (a gRPC status, or a failed Send) end the stream as they are.
func (c *backend) watch(ctx context.Context, f events.Filter, token string, send func(events.Message) error) error {
	lag := c.opts.metrics.StreamLag()
	return watchStatus(ctx, c.opts.events.Watch(ctx, f, token, func(m events.Message) error {
		if !m.Stored.IsZero() {
			lag(time.Since(m.Stored))
		}
		return send(m)
	}, c.opts.watchOpts...))
}

type sentTokenKey struct{}

// WithSentTokenRecorder returns a context under which a Watch RPC tells
// record the resume token of each event it sent pre-encoded (sendShared),
// which the stream cannot read back as it can a message's: the server ends
// a stream it shuts down with the last token sent, for the client to
// resume from.
func WithSentTokenRecorder(ctx context.Context, record func(token string)) context.Context {
	return context.WithValue(ctx, sentTokenKey{}, record)
}

func sentTokenRecorder(ctx context.Context) func(string) {
	if r, ok := ctx.Value(sentTokenKey{}).(func(string)); ok && r != nil {
		return r
	}
	return func(string) {}
}

// watchStatus translates the end of a subscription, after the table in
// internal/events: every status carries ErrorInfo, as the unary errors do.
func watchStatus(ctx context.Context, err error) error {
	var (
		code    codes.Code
		reason  string
		msg     string
		details []protoadapt.MessageV1
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, events.ErrTokenExpired):
		code, reason = codes.OutOfRange, "RESUME_TOKEN_EXPIRED"
		msg = "the resume_token is older than the event log's retention, so events after it may be lost: " +
			"re-read the current state with the Get and List RPCs, then watch again without a resume_token"
	case errors.Is(err, events.ErrBadToken):
		code, reason = codes.InvalidArgument, "INVALID_RESUME_TOKEN"
		msg = "invalid request: check resume_token"
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
			Field:       "resume_token",
			Description: "must be the resume_token of a message of an earlier stream of this gateway's event log",
		}}})
	case errors.Is(err, events.ErrInvalidFilter):
		// Validation runs first, so this is a gap in it.
		code, reason = codes.InvalidArgument, "INVALID_FILTER"
		msg = "invalid request: the filter is not valid"
	case errors.Is(err, events.ErrSlowSubscriber):
		code, reason = codes.ResourceExhausted, "SLOW_SUBSCRIBER"
		msg = "the stream was ended because its messages were not read fast enough; resume with the last resume_token"
	case errors.Is(err, events.ErrClosed):
		code, reason = codes.Unavailable, "EVENT_LOG_CLOSED"
		msg = "the gateway is shutting down; resume with the last resume_token"
	case errors.Is(err, events.ErrUnavailable):
		code, reason = codes.Unavailable, "EVENT_LOG_UNAVAILABLE"
		msg = "the event log is unavailable; retry with the last resume_token"
	case ctx.Err() != nil:
		// A status as the cause (e.g. the server draining) says why better
		// than the bare cancellation.
		if st, ok := status.FromError(context.Cause(ctx)); ok && st.Code() != codes.OK {
			return st.Err()
		}
		return status.FromContextError(ctx.Err()).Err()
	default:
		if _, ok := status.FromError(err); ok {
			return err // from send: an upstream call or the stream itself
		}
		code, reason = codes.Internal, "INTERNAL"
		msg = "the event stream failed"
	}
	details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: GatewayErrorDomain})
	st := status.New(code, msg)
	if d, derr := st.WithDetails(details...); derr == nil {
		st = d
	}
	return st.Err()
}

func heartbeat() *gatewayv1.Heartbeat { return &gatewayv1.Heartbeat{Time: timestamppb.Now()} }

// decodeObject decodes an event's object into the upstream resource T and
// converts it. When the object does not decode it logs why (never the
// object's values) and returns the zero P: the event is sent without it.
func decodeObject[T, P any](c *backend, ev *events.Event, conv func(*T) P) P {
	var obj T
	if err := json.Unmarshal(ev.Object, &obj); err != nil {
		c.opts.logger.Warn("events: sending an event without its object, which does not decode",
			"event_id", ev.ID, "type", ev.Type, "reason", decodeReason(err))
		var zero P
		return zero
	}
	return conv(&obj)
}

// decodeReason names what failed without quoting the value.
func decodeReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " is a JSON " + te.Value + ", want " + te.Type.String()
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON"
	}
	return "a field has an invalid value"
}
