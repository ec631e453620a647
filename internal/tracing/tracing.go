// Package tracing sets up the gateway's OpenTelemetry tracing from the
// standard OTEL_* environment variables: an OTLP exporter when they ask for
// one, nothing otherwise.
//
// Tracing is on when OTEL_TRACES_EXPORTER is otlp, or when it is unset and
// an OTLP endpoint is (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_TRACES_EXPORTER=none and
// OTEL_SDK_DISABLED=true turn it off. The protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL: grpc or
// http/protobuf (the default). The exporters themselves read the endpoint,
// headers, TLS and timeout settings (OTEL_EXPORTER_OTLP_*), the SDK the
// sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on) and the batch
// settings (OTEL_BSP_*), and the resource OTEL_SERVICE_NAME (default
// upvest-gateway) and OTEL_RESOURCE_ATTRIBUTES.
//
// The trace context is read from callers and sent to Upvest as W3C Trace
// Context (traceparent, tracestate) whether tracing is on or not, so that a
// caller's trace id still reaches Upvest's side and the gateway's logs.
// Baggage is not forwarded: it would carry callers' data to Upvest.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is the service.name of the gateway's spans unless
// OTEL_SERVICE_NAME says otherwise.
const ServiceName = "upvest-gateway"

// Protocols of the OTLP exporter.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Settings is what the environment asks for.
type Settings struct {
	Enabled  bool
	Protocol string // ProtocolGRPC or ProtocolHTTP, when Enabled
}

// String says what the settings do, for the start-up log.
func (s Settings) String() string {
	if !s.Enabled {
		return "off"
	}
	return "otlp " + s.Protocol
}

// EnvError is an OTEL_* variable the gateway cannot use.
type EnvError struct {
	Var, Value, Reason string
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%s %q %s", e.Var, e.Value, e.Reason)
}

// ParseEnv reads the settings from env without touching anything else.
func ParseEnv(env map[string]string) (Settings, error) {
	get := func(k string) string { return strings.TrimSpace(env[k]) }
	if v := get("OTEL_SDK_DISABLED"); v != "" {
		switch strings.ToLower(v) {
		case "true":
			return Settings{}, nil
		case "false":
		default:
			return Settings{}, &EnvError{"OTEL_SDK_DISABLED", v, "is not true or false"}
		}
	}
	var s Settings
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "":
		s.Enabled = get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	case "none":
		return Settings{}, nil
	case "otlp":
		s.Enabled = true
	default:
		return Settings{}, &EnvError{"OTEL_TRACES_EXPORTER", get("OTEL_TRACES_EXPORTER"), "is not supported: otlp or none"}
	}
	if !s.Enabled {
		return s, nil
	}
	name, proto := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		name, proto = "OTEL_EXPORTER_OTLP_PROTOCOL", get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(proto) {
	case "", ProtocolHTTP:
		s.Protocol = ProtocolHTTP
	case ProtocolGRPC:
		s.Protocol = ProtocolGRPC
	default:
		return Settings{}, &EnvError{name, proto, "is not supported: grpc or http/protobuf"}
	}
	return s, nil
}

// Tracing is the gateway's tracer provider and propagator.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Records reports whether tp may record spans: false for the provider New
// makes with tracing off, with which the gateway only passes the caller's
// trace context on and makes no span.
func Records(tp trace.TracerProvider) bool {
	_, off := tp.(noop.TracerProvider)
	return !off
}

// Propagator is the trace context the gateway reads and sends: W3C Trace
// Context only.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// New starts what s asks for: an OTLP exporter behind a batching tracer
// provider, or a provider that records nothing. The exporters read their
// settings from the process environment. New does no I/O: an unreachable
// collector costs dropped spans, logged by the SDK, never a call.
func New(ctx context.Context, s Settings, version string) (*Tracing, error) {
	t := &Tracing{Propagator: Propagator(), Provider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}
	if !s.Enabled {
		return t, nil
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch s.Protocol {
	case ProtocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	case ProtocolHTTP:
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: unknown protocol %q", s.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", ServiceName), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.Provider, t.shutdown = tp, tp.Shutdown
	return t, nil
}

// Shutdown sends the spans still buffered and stops the exporter, within
// ctx.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }
