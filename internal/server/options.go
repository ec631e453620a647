package server

import (
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// Defaults of the options.
const (
	DefaultMaxBodyBytes    = 1 << 20 // REST request bodies; a create request is a few hundred bytes
	DefaultShutdownTimeout = 15 * time.Second
)

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
	logCheckInterval time.Duration
	grpcOpts         []grpc.ServerOption
	unary            []grpc.UnaryServerInterceptor
	stream           []grpc.StreamServerInterceptor
	events           *events.Log
	quarantine       *events.Quarantine
	receiverOpts     []webhook.Option
	webhookKeys      webhook.KeySource
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
// the gateway's own routes (/v1/, /openapi.json, /healthz, /readyz, /, and
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

// WithShutdownTimeout bounds the graceful drain once Serve's context is done
// (default DefaultShutdownTimeout); calls still running then are cut off.
func WithShutdownTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.shutdownTimeout = d
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

// WithGRPCServerOptions adds options to the gRPC server (credentials,
// limits).
func WithGRPCServerOptions(opts ...grpc.ServerOption) Option {
	return optionFunc(func(o *options) { o.grpcOpts = append(o.grpcOpts, opts...) })
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
