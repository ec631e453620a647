package server

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/tracing"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// The gateway's metrics and traces of its own calls (WithMetrics,
// WithTracing); the upstream client and the webhook receiver record theirs.

// tracingOff reports whether WithTracing was given a provider that records
// nothing (tracing off): then no span is made, and the caller's trace
// context is only read (traceContextUnary, traceContextStream).
func (o *options) tracingOff() bool { return !tracing.Records(o.tracer) }

// tracingHandler is the gRPC server's stats handler with WithTracing: a span
// per call, continuing the caller's trace; health checks, which probes make
// every few seconds, are not traced. Its metrics stay off: the Prometheus
// ones are the gateway's.
func (o *options) tracingHandler() stats.Handler {
	return otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(o.tracer),
		otelgrpc.WithPropagators(o.propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	)
}

// traceContextUnary is what is left of tracing when it is off: the caller's
// trace context goes into the call's context, for the request log's trace
// id and for Upvest, and no span is made. An interceptor, not a stats
// handler: with any stats handler gRPC builds a record and reads the clock
// for every message, a few per cent of a unary call and more of an event
// stream's sends.
func traceContextUnary(propagator propagation.TextMapPropagator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(propagator.Extract(ctx, incomingCarrier{ctx}), req)
	}
}

// traceContextStream is traceContextUnary for streams.
func traceContextStream(propagator propagation.TextMapPropagator) streamStep {
	return func(ss grpc.ServerStream, _ *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
		ctx := ss.Context()
		if traced := propagator.Extract(ctx, incomingCarrier{ctx}); traced != ctx {
			return &contextStream{ServerStream: ss, ctx: traced}, nil, nil
		}
		return ss, nil, nil // no trace context: no wrapper for every message to pass
	}
}

// incomingCarrier reads a call's incoming metadata, without copying all of
// it as metadata.FromIncomingContext does.
type incomingCarrier struct{ ctx context.Context }

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (incomingCarrier) Set(string, string) {}

func (c incomingCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	return slices.Collect(maps.Keys(md))
}

// annotateSpan puts the ids a support request needs on the call's span.
func annotateSpan(ctx context.Context, requestID, idempotencyKey string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if requestID != "" {
		span.SetAttributes(attribute.String(upstream.AttrRequestID, requestID))
	}
	if idempotencyKey != "" {
		span.SetAttributes(attribute.String(upstream.AttrIdempotencyKey, idempotencyKey))
	}
}

// traceID is the call's trace id, "" when it has none (tracing off and no
// trace context from the caller).
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// countCalls counts the stream in the gRPC server's metrics: started,
// its messages, handled by code and its time.
func (s *Server) countCalls(ss grpc.ServerStream, info *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
	start := time.Now()
	series := s.opts.metrics.RPCStarted(info.FullMethod, info.IsClientStream, info.IsServerStream)
	return &countedStream{ServerStream: ss, series: series}, func(err error) error {
		series.Handled(err, time.Since(start))
		return err
	}, nil
}

type countedStream struct {
	grpc.ServerStream
	series *metrics.RPCSeries
}

func (c *countedStream) SendMsg(m any) error {
	err := c.ServerStream.SendMsg(m)
	if err == nil {
		c.series.Sent()
	}
	return err
}

func (c *countedStream) RecvMsg(m any) error {
	err := c.ServerStream.RecvMsg(m)
	if err == nil {
		c.series.Received()
	}
	return err
}

// countStreams keeps the open server streams per RPC, and counts each
// one's end by why it ended.
func (s *Server) countStreams(ss grpc.ServerStream, info *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
	if s.opts.metrics == nil || !info.IsServerStream || info.IsClientStream {
		return ss, nil, nil
	}
	ended := s.opts.metrics.StreamOpened(info.FullMethod)
	return ss, func(err error) error {
		ended(streamEndReason(ss.Context(), err))
		return err
	}, nil
}

// streamEndReason names how a stream ended, as the metrics do: client,
// slow_subscriber, token_expired, shutdown or error.
func streamEndReason(ctx context.Context, err error) string {
	st := status.Convert(err)
	switch {
	case err == nil, st.Code() == codes.Canceled, errors.Is(err, context.Canceled), ctx.Err() != nil && st.Code() != codes.Unavailable:
		return "client"
	case st.Code() == codes.OutOfRange:
		return "token_expired"
	}
	switch reasonOf(st) {
	case "SLOW_SUBSCRIBER":
		return "slow_subscriber"
	case ReasonShuttingDown, "EVENT_LOG_CLOSED":
		return "shutdown"
	}
	return "error"
}

// reasonOf is the reason of the status's ErrorInfo, "" without one.
func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}
