package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/tracing"
)

// DefaultUserAgent identifies the gateway to Upvest support.
const DefaultUserAgent = "upvest-gateway/1"

// DefaultTokenEarlyExpiry is how long before its expiry a token is replaced,
// so a token never expires in flight.
const DefaultTokenEarlyExpiry = 60 * time.Second

// An Option configures a Client in New.
type Option interface {
	applyOption(*clientOptions)
}

type clientOptions struct {
	transport    http.RoundTripper
	retry        RetryPolicy
	logger       *slog.Logger
	earlyExpiry  time.Duration
	userAgent    string
	insecureHTTP bool
	metrics      *metrics.Metrics
	tracer       trace.TracerProvider // nil: no spans, no trace context sent
	propagator   propagation.TextMapPropagator
	err          error // first invalid option, reported by New
}

func defaultOptions() clientOptions {
	return clientOptions{
		transport:   sharedTransport(),
		retry:       DefaultRetryPolicy,
		logger:      slog.New(slog.DiscardHandler),
		earlyExpiry: DefaultTokenEarlyExpiry,
		userAgent:   DefaultUserAgent,
	}
}

type optionFunc func(*clientOptions)

func (f optionFunc) applyOption(o *clientOptions) { f(o) }

func (o *clientOptions) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// WithTransport replaces the HTTP transport under the signer (default: a tuned
// *http.Transport shared by all clients of the process). It is called once
// per attempt and must not retry on its own.
func WithTransport(rt http.RoundTripper) Option {
	return optionFunc(func(o *clientOptions) {
		if rt == nil {
			o.fail(errors.New("upstream: WithTransport: nil RoundTripper"))
			return
		}
		o.transport = rt
	})
}

// WithRetry replaces the client-wide retry policy (default DefaultRetryPolicy).
// Zero fields take the default; MaxAttempts 1 disables retries.
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(o *clientOptions) {
		np, err := p.normalize()
		if err != nil {
			o.fail(fmt.Errorf("upstream: WithRetry: %w", err))
			return
		}
		o.retry = np
	})
}

// WithLogger sets where per-attempt debug records go (default: nowhere). The
// client never logs headers, bodies, tokens or signatures.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *clientOptions) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		o.logger = l
	})
}

// WithTokenEarlyExpiry makes the client replace a token this long before it
// expires (default 60s). It is capped at half the token's lifetime, so short
// lived tokens are still used.
func WithTokenEarlyExpiry(d time.Duration) Option {
	return optionFunc(func(o *clientOptions) {
		if d < 0 {
			o.fail(fmt.Errorf("upstream: WithTokenEarlyExpiry: negative duration %v", d))
			return
		}
		o.earlyExpiry = d
	})
}

// WithUserAgent sets the user-agent header (default DefaultUserAgent). It is
// not covered by the signature.
func WithUserAgent(ua string) Option {
	return optionFunc(func(o *clientOptions) {
		if ua == "" {
			ua = DefaultUserAgent
		}
		if !validHeaderValue(ua) {
			o.fail(errors.New("upstream: WithUserAgent: not a valid header value"))
			return
		}
		o.userAgent = ua
	})
}

// WithInsecureHTTP allows a plain http BaseURL on a non-loopback host (a
// simulator on a trusted network). Without it, only https or loopback http is
// accepted, because the client secret and tokens would travel in clear text.
func WithInsecureHTTP() Option {
	return optionFunc(func(o *clientOptions) { o.insecureHTTP = true })
}

// WithMetrics records every attempt (operation, status, attempt number,
// latency), retry, token request and refresh, and every call that ended
// with its outcome unknown, in m (default: nothing is recorded).
func WithMetrics(m *metrics.Metrics) Option {
	return optionFunc(func(o *clientOptions) { o.metrics = m })
}

// WithTracing makes every call a span of tp (named after its operation,
// with the idempotency key and the last upvest-request-id as attributes),
// every HTTP request under it a client span (otelhttp, the token request
// included), and sends the trace context in the headers propagator writes
// (e.g. traceparent). The headers are added under the signature, which
// does not cover them. Without it, no span is made and no trace context is
// sent. With a provider that records nothing (noop.TracerProvider: tracing
// off), no span is made either, and the caller's trace context, if any,
// is sent on as it came.
func WithTracing(tp trace.TracerProvider, propagator propagation.TextMapPropagator) Option {
	return optionFunc(func(o *clientOptions) {
		if tp == nil || propagator == nil {
			o.fail(errors.New("upstream: WithTracing: nil TracerProvider or propagator"))
			return
		}
		o.tracer, o.propagator = tp, propagator
	})
}

// tracedTransport puts otelhttp's client spans and trace headers on rt,
// or with tracing off only the trace headers.
func (o *clientOptions) tracedTransport(rt http.RoundTripper) http.RoundTripper {
	switch {
	case o.tracer == nil:
		return rt
	case !tracing.Records(o.tracer):
		// otelhttp would cost a tenth of a call's CPU, for nothing but
		// the header.
		return propagatingTransport{next: rt, propagator: o.propagator}
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(o.tracer),
		otelhttp.WithPropagators(o.propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "upvest HTTP " + r.Method }))
}

// propagatingTransport sends the trace context of each request's context
// in its headers, and makes no span.
type propagatingTransport struct {
	next       http.RoundTripper
	propagator propagation.TextMapPropagator
}

func (t propagatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if trace.SpanContextFromContext(req.Context()).IsValid() {
		// A RoundTripper must not modify its request: a copy with its own
		// header.
		r := *req
		r.Header = req.Header.Clone()
		t.propagator.Inject(req.Context(), propagation.HeaderCarrier(r.Header))
		req = &r
	}
	return t.next.RoundTrip(req)
}

// sharedTransport is the default transport: one connection pool per process,
// sized for many concurrent calls to the single Upvest host, with timeouts on
// every phase that a caller without a deadline could otherwise hang on.
var sharedTransport = sync.OnceValue(func() http.RoundTripper {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   30 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2: true,
		}
	}
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64 // the default of 2 would churn connections under load
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.ExpectContinueTimeout = time.Second
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.MinVersion = tls.VersionTLS12
	// Detect dead HTTP/2 connections instead of waiting on them.
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
	return t
})
