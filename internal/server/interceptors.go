package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/service"
)

// errPanic is what a caller sees of a panic: nothing of its cause.
var errPanic = status.Error(codes.Internal, "internal error")

// recoverUnary turns a handler panic into INTERNAL, logged with its stack.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				logPanic(ctx, log, info.FullMethod, p)
				resp, err = nil, errPanic
			}
		}()
		return handler(ctx, req)
	}
}

// logPanic logs the panic's kind and stack. The value itself is logged only
// for runtime errors (nil dereference, index out of range): any other value
// could hold request data.
func logPanic(ctx context.Context, log *slog.Logger, method string, p any) {
	what := fmt.Sprintf("%T", p)
	if re, ok := p.(runtime.Error); ok {
		what = re.Error()
	}
	log.ErrorContext(ctx, "panic in handler", "method", method, "panic", what, "stack", string(debug.Stack()))
}

// logUnary logs one line per call: method, code, duration, transport,
// caller, peer and the ids a support request needs: the request_id the
// caller sent, the upvest-request-id and idempotency-key the handler set in
// the response header metadata, and the trace id. Never payloads. The ids
// also go on the call's span.
func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		hc := &headerCapture{}
		if sts := grpc.ServerTransportStreamFromContext(ctx); sts != nil {
			hc.ServerTransportStream = sts
			ctx = grpc.NewContextWithServerTransportStream(ctx, hc)
		}
		note := &callNote{}
		ctx = context.WithValue(ctx, callNoteKey{}, note)
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, requestIDOf(ctx, req), start, hc.get(), note, err)
		return resp, err
	}
}

// logStream is logUnary for streams: one line when the stream ends.
func logStream(log *slog.Logger) streamStep {
	return func(ss grpc.ServerStream, info *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
		start := time.Now()
		note := &callNote{}
		w := &capturingStream{ServerStream: &contextStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callNoteKey{}, note)}}
		return w, func(err error) error {
			logCall(ss.Context(), log, info.FullMethod, "", start, w.hc.get(), note, err)
			return err
		}, nil
	}
}

// callNote is what the interceptors inside the request log learn of a
// call that its log line reports: who the caller turned out to be.
type callNote struct {
	mu     sync.Mutex
	caller string
}

type callNoteKey struct{}

// noteCaller records the caller the guard identified in the call's note.
func noteCaller(ctx context.Context) {
	n, ok := ctx.Value(callNoteKey{}).(*callNote)
	if !ok {
		return
	}
	if c, ok := auth.CallerFromContext(ctx); ok {
		n.mu.Lock()
		n.caller = c.Identity
		n.mu.Unlock()
	}
}

func noteCallerUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	noteCaller(ctx)
	return handler(ctx, req)
}

func noteCallerStream(ss grpc.ServerStream, _ *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
	noteCaller(ss.Context())
	return ss, nil, nil
}

// guardStream is the guard's stream interceptor as a step.
func guardStream(g *auth.Guard) streamStep {
	return func(ss grpc.ServerStream, info *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
		guarded, release, err := g.AdmitStream(ss, info.FullMethod)
		if err != nil {
			return nil, nil, err
		}
		return guarded, func(err error) error { release(); return err }, nil
	}
}

func logCall(ctx context.Context, log *slog.Logger, method, requestID string, start time.Time, header metadata.MD, note *callNote, err error) {
	code, level := codes.OK, slog.LevelInfo
	var st *status.Status
	if err != nil {
		st = status.Convert(err)
		code, level = st.Code(), levelOf(st.Code())
	}
	upvestRequestID, key := first(header, service.UpvestRequestIDMetadata), first(header, service.IdempotencyKeyMetadata)
	annotateSpan(ctx, upvestRequestID, key)
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
		slog.String("transport", transportOf(ctx)),
	)
	note.mu.Lock()
	if note.caller != "" {
		attrs = append(attrs, slog.String("caller", note.caller))
	}
	note.mu.Unlock()
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && p.Addr.Network() != "bufconn" {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
	} else if v := metadata.ValueFromIncomingContext(ctx, "x-forwarded-for"); len(v) > 0 {
		// A REST call: grpc-gateway passes the HTTP client's address on.
		attrs = append(attrs, slog.String("peer", v[0]))
	}
	if requestID != "" {
		attrs = append(attrs, slog.String("request_id", requestID))
	}
	if upvestRequestID != "" {
		attrs = append(attrs, slog.String("upvest_request_id", upvestRequestID))
	}
	if key != "" {
		attrs = append(attrs, slog.String("idempotency_key", key))
	}
	if id := traceID(ctx); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	// The reason, not the message: messages may quote upstream text.
	if st != nil {
		for _, d := range st.Details() {
			if ei, ok := d.(*errdetails.ErrorInfo); ok {
				attrs = append(attrs, slog.String("reason", ei.GetReason()))
				if hs := ei.GetMetadata()["http_status"]; hs != "" {
					attrs = append(attrs, slog.String("upvest_http_status", hs))
				}
			}
		}
	}
	log.LogAttrs(ctx, level, "rpc", attrs...)
}

// maxLoggedRequestID bounds the caller's request_id in the log; a valid one
// is a UUID.
const maxLoggedRequestID = 64

// requestIDOf is the request_id the caller sent: the request's field, or
// over REST the Idempotency-Key header.
func requestIDOf(ctx context.Context, req any) string {
	var id string
	if r, ok := req.(interface{ GetRequestId() string }); ok {
		id = r.GetRequestId()
	}
	if id == "" {
		if v := metadata.ValueFromIncomingContext(ctx, service.IdempotencyKeyMetadata); len(v) > 0 {
			id = v[0]
		}
	}
	if len(id) > maxLoggedRequestID {
		id = id[:maxLoggedRequestID] + "…"
	}
	return id
}

func levelOf(c codes.Code) slog.Level {
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return slog.LevelError
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.PermissionDenied:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// transportOf tells REST calls (which arrive over the in-memory connection)
// from direct gRPC calls.
func transportOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && p.Addr.Network() == "bufconn" {
		return "rest"
	}
	return "grpc"
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// headerCapture records the header metadata a handler sets, so the log line
// can carry the ids the handler learned.
type headerCapture struct {
	grpc.ServerTransportStream
	mu sync.Mutex
	md metadata.MD
}

func (h *headerCapture) record(md metadata.MD) {
	h.mu.Lock()
	h.md = metadata.Join(h.md, md)
	h.mu.Unlock()
}

func (h *headerCapture) get() metadata.MD {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.md
}

func (h *headerCapture) SetHeader(md metadata.MD) error {
	h.record(md)
	return h.ServerTransportStream.SetHeader(md)
}

func (h *headerCapture) SendHeader(md metadata.MD) error {
	h.record(md)
	return h.ServerTransportStream.SendHeader(md)
}

// capturingStream is headerCapture for a server stream.
type capturingStream struct {
	grpc.ServerStream
	hc headerCapture
}

func (s *capturingStream) SetHeader(md metadata.MD) error {
	s.hc.record(md)
	return s.ServerStream.SetHeader(md)
}

func (s *capturingStream) SendHeader(md metadata.MD) error {
	s.hc.record(md)
	return s.ServerStream.SendHeader(md)
}

// contextStream is a server stream with its own context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// errTooManyStreams refuses a stream over Limits.MaxStreams.
var errTooManyStreams = func() error {
	st := status.New(codes.ResourceExhausted, "the gateway serves as many streams as it may; retry later, or on another replica")
	if d, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: "GATEWAY_STREAM_LIMIT", Domain: service.GatewayErrorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(5 * time.Second)},
	); err == nil {
		st = d
	}
	return st.Err()
}()

// limitStreams holds a slot of Limits.MaxStreams for as long as a stream
// is open, so that open streams cannot take the gateway's memory.
func (s *Server) limitStreams(ss grpc.ServerStream, _ *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
	if s.streams == nil {
		return ss, nil, nil
	}
	select {
	case s.streams <- struct{}{}:
	default:
		return nil, nil, errTooManyStreams
	}
	return ss, func(err error) error { <-s.streams; return err }, nil
}
