package server

import (
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// Defaults of the options.
const (
	DefaultMaxBodyBytes    = 1 << 20 // REST request bodies; a create request is a few hundred bytes
	DefaultShutdownTimeout = 15 * time.Second
)

// Limits bound what callers can hold of the gateway: connections, time to
// send a request, streams. Zero fields take DefaultLimits' values; a
// negative one turns that limit off.
type Limits struct {
	// MaxConns is how many connections each listener holds at once; more
	// wait in the kernel's backlog. Keep the sum of all listeners below the
	// process's file descriptor limit.
	MaxConns int
	// MaxConnsPerIP is how many of them one remote address may hold; more
	// are closed at once. Behind a load balancer that hides client
	// addresses, turn it off (-1).
	MaxConnsPerIP int
	// BodyTimeout is how long a client may take to send a request's body
	// (REST calls and webhook deliveries) after its header.
	BodyTimeout time.Duration
	// HeaderTimeout bounds the TLS handshake and request header, and
	// IdleTimeout an idle keep-alive connection.
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	// MaxConcurrentStreams is how many calls one gRPC (HTTP/2) connection
	// may have open at once.
	MaxConcurrentStreams uint32
	// MaxConnectionAge makes gRPC clients reconnect after this long, so that
	// long-lived connections spread over new replicas; calls still open get
	// MaxConnectionAgeGrace to finish (streams end with UNAVAILABLE and
	// resume elsewhere).
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
	// MaxStreams is how many Watch streams the gateway serves at once, for
	// all callers together; more are refused with RESOURCE_EXHAUSTED.
	MaxStreams int
}

// DefaultLimits are the limits of a gateway built without WithLimits.
var DefaultLimits = Limits{
	MaxConns:              4096,
	MaxConnsPerIP:         512,
	BodyTimeout:           10 * time.Second,
	HeaderTimeout:         10 * time.Second,
	IdleTimeout:           2 * time.Minute,
	MaxConcurrentStreams:  1024,
	MaxConnectionAge:      time.Hour,
	MaxConnectionAgeGrace: time.Minute,
	MaxStreams:            20000,
}

// withDefaults fills zero fields from DefaultLimits and turns negative ones
// into "no limit" (0).
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	l.MaxConns = pick(l.MaxConns, d.MaxConns)
	l.MaxConnsPerIP = pick(l.MaxConnsPerIP, d.MaxConnsPerIP)
	l.MaxStreams = pick(l.MaxStreams, d.MaxStreams)
	l.BodyTimeout = pick(l.BodyTimeout, d.BodyTimeout)
	l.HeaderTimeout = pick(l.HeaderTimeout, d.HeaderTimeout)
	l.IdleTimeout = pick(l.IdleTimeout, d.IdleTimeout)
	l.MaxConnectionAge = pick(l.MaxConnectionAge, d.MaxConnectionAge)
	l.MaxConnectionAgeGrace = pick(l.MaxConnectionAgeGrace, d.MaxConnectionAgeGrace)
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	return l
}

// pick is a limit: v, def when v is zero, none (0) when v is negative.
func pick[T int | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// WithLimits sets the connection, time and stream limits (default
// DefaultLimits).
func WithLimits(l Limits) Option {
	return optionFunc(func(o *options) { o.limits = l })
}

// An Option configures a Server in New.
type Option interface{ applyServer(*options) }

type optionFunc func(*options)

func (f optionFunc) applyServer(o *options) { f(o) }

type options struct {
	logger           *slog.Logger
	serviceOpts      []service.Option
	httpRoutes       []httpRoute
	maxBodyBytes     int64
	shutdownTimeout  time.Duration
	shutdownDelay    time.Duration
	logCheckInterval time.Duration
	unary            []grpc.UnaryServerInterceptor
	stream           []grpc.StreamServerInterceptor
	events           *events.Log
	quarantine       *events.Quarantine
	receiverOpts     []webhook.Option
	webhookKeys      webhook.KeySource
	limits           Limits
	tls              *tlsconfig.Server
	guard            *auth.Guard
	metrics          *metrics.Metrics
	tracer           trace.TracerProvider
	propagator       propagation.TextMapPropagator
	cors             CORS
}

type httpRoute struct {
	pattern string
	handler http.Handler
}

func newOptions(opts []Option) options {
	o := options{
		logger:           slog.Default(),
		maxBodyBytes:     DefaultMaxBodyBytes,
		shutdownTimeout:  DefaultShutdownTimeout,
		logCheckInterval: DefaultLogCheckInterval,
	}
	for _, opt := range opts {
		if opt != nil {
			opt.applyServer(&o)
		}
	}
	return o
}

// WithLogger sets where the request log and server errors go (default
// slog.Default()). Records carry method, code, duration and ids, never
// payloads or credentials.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithServiceOptions passes options to the services (e.g.
// service.WithCurrencies).
func WithServiceOptions(opts ...service.Option) Option {
	return optionFunc(func(o *options) { o.serviceOpts = append(o.serviceOpts, opts...) })
}

// WithEvents wires in the event log: the webhook receiver at WebhookPath
// appends Upvest's deliveries to log, the Watch RPCs stream from it, and
// /readyz checks that it can be reached. opts configure the receiver. The
// caller owns log and closes it after Serve has returned, so that webhook
// deliveries in flight are answered first.
func WithEvents(log *events.Log, opts ...webhook.Option) Option {
	return optionFunc(func(o *options) {
		o.events = log
		o.receiverOpts = append(o.receiverOpts, opts...)
	})
}

// WithQuarantine is the event log's quarantine (events.OpenQuarantine),
// required with WithEvents: the webhook receiver keeps there what the log
// cannot take, so that one bad event never holds back Upvest's deliveries,
// and the EventQuarantineService lets operators list and re-inject it. The
// caller owns q.
func WithQuarantine(q *events.Quarantine) Option {
	return optionFunc(func(o *options) { o.quarantine = q })
}

// WithWebhookKeys replaces where the receiver gets the keys deliveries are
// verified with (default: Upvest's GET /auth/verify_keys through
// Config.Upstream).
func WithWebhookKeys(keys webhook.KeySource) Option {
	return optionFunc(func(o *options) { o.webhookKeys = keys })
}

// WithHTTPHandler serves h for pattern (net/http.ServeMux syntax, e.g.
// "POST /webhooks/upvest") on the HTTP listener, beside the REST face. This
// is the seam for routes that are not gRPC methods, such as the webhook
// receiver of the event log. Such a handler gets no body limit and no REST
// error format: it owns its request entirely. A pattern that conflicts with
// the gateway's own routes (/v1/, /openapi.json, /healthz, /readyz, /,
// gRPC-Web's /upvest.gateway.v1.<Service>/, and
// WebhookPath with WithEvents) makes New fail.
func WithHTTPHandler(pattern string, h http.Handler) Option {
	return optionFunc(func(o *options) { o.httpRoutes = append(o.httpRoutes, httpRoute{pattern, h}) })
}

// WithMaxBodyBytes caps REST request bodies (default DefaultMaxBodyBytes);
// larger ones are refused with 413.
func WithMaxBodyBytes(n int64) Option {
	return optionFunc(func(o *options) {
		if n > 0 {
			o.maxBodyBytes = n
		}
	})
}

// WithShutdownTimeout bounds the graceful drain (default
// DefaultShutdownTimeout): once it begins, new calls are refused and calls in
// flight get this long to finish; those still running then are cut off (a
// REST call with a problem+json 503 that carries its idempotency key).
func WithShutdownTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.shutdownTimeout = d
		}
	})
}

// WithShutdownDelay sets how long the gateway goes on serving, not ready,
// once Serve's context is done and before the drain begins (default 0): long
// enough for load balancers and Kubernetes endpoints to stop sending it new
// calls, which they learn from /readyz and the gRPC health service.
func WithShutdownDelay(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d >= 0 {
			o.shutdownDelay = d
		}
	})
}

// WithMetrics records the gateway's metrics in m: the gRPC server's per
// method and code (its interceptors outermost, so REST calls count too), the
// open streams per RPC and how they ended, and the services' and the webhook
// receiver's own; and serves m at /metrics on the admin listener. The
// upstream client is given m by whoever makes it (upstream.WithMetrics).
func WithMetrics(m *metrics.Metrics) Option {
	return optionFunc(func(o *options) { o.metrics = m })
}

// WithTracing traces every call (otelgrpc's stats handler, health checks
// left out) with tp, continuing the trace a caller sends in the headers
// propagator reads (e.g. traceparent; over REST the same HTTP headers). The
// server span carries the upvest-request-id and the idempotency key, and
// the request log the trace id. The upstream client is traced by whoever
// makes it (upstream.WithTracing).
func WithTracing(tp trace.TracerProvider, propagator propagation.TextMapPropagator) Option {
	return optionFunc(func(o *options) {
		if tp != nil && propagator != nil {
			o.tracer, o.propagator = tp, propagator
		}
	})
}

// WithLogCheckInterval sets how often, with WithEvents, the gRPC health of
// the services serving Watch RPCs is checked against the event log (default
// DefaultLogCheckInterval).
func WithLogCheckInterval(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.logCheckInterval = d
		}
	})
}

// WithUnaryInterceptors adds unary interceptors inside the gateway's own
// (logging, panic recovery), e.g. authorization or metrics. REST calls pass
// them too.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) Option {
	return optionFunc(func(o *options) { o.unary = append(o.unary, i...) })
}

// WithStreamInterceptors adds stream interceptors inside the gateway's own.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) Option {
	return optionFunc(func(o *options) { o.stream = append(o.stream, i...) })
}

// WithTLS serves every listener over TLS from tls's files (reloaded when
// they change): gRPC with mutual TLS when tls has a client CA bundle; the
// HTTP and webhook listeners with a client certificate checked when one is
// sent, so that probes and Upvest need none. The REST face's in-memory
// connection to the gRPC server stays plain.
func WithTLS(tls *tlsconfig.Server) Option {
	return optionFunc(func(o *options) { o.tls = tls })
}

// WithGuard puts the caller checks of guard (identity, the policy's methods
// and account groups, per-caller limits) in front of every RPC, on gRPC and
// the REST face alike, right inside the request log and panic recovery.
// REST calls bring their identity by bearer token, or by the client
// certificate the HTTP listener verified, which the REST face forwards.
func WithGuard(guard *auth.Guard) Option {
	return optionFunc(func(o *options) { o.guard = guard })
}
