package server

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/test/bufconn"

	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// streamWorkers is how many goroutines the gRPC server keeps to run calls
// on. A call in a goroutine of its own (once there are no idle workers,
// e.g. while Watch streams hold them) starts on a small stack that grows,
// copied each time, as signing, the upstream HTTP client and the request
// log go deep: a twentieth of a unary call's CPU. A worker's stack has
// grown already.
func streamWorkers() uint32 { return uint32(32 * goruntime.GOMAXPROCS(0)) }

// maxRecvMsgSize caps a gRPC request; the largest legitimate one is a few
// hundred bytes, and REST bodies are capped at 1 MiB by default.
const maxRecvMsgSize = 1 << 20

// Config is what the gateway cannot run without.
type Config struct {
	Upstream *upstream.Client // the Upvest client every service calls
	// The listeners, already open, so that callers (and tests, with port 0)
	// know the addresses before Serve. The Server closes them.
	GRPCListener net.Listener
	HTTPListener net.Listener
	// WebhookListener, when set, serves Upvest's webhook deliveries
	// (WebhookPath) and nothing else, and the HTTP listener does not serve
	// them: it can face the internet while the rest stays internal.
	WebhookListener net.Listener
	// AdminListener, when set, serves the operators' endpoints: /metrics
	// (WithMetrics), /debug/pprof/, /healthz and /readyz. It passes no
	// caller guard: keep it off untrusted networks.
	AdminListener net.Listener
}

// WebhookPath is where Upvest delivers webhooks, with WithEvents.
const WebhookPath = "/webhooks/upvest"

// Server is the assembled gateway.
type Server struct {
	opts    options
	log     *slog.Logger
	grpc    *grpc.Server
	health  *health.Server
	http    *http.Server
	grpcLis net.Listener
	httpLis net.Listener
	memLis  *bufconn.Listener
	// The webhook receiver's own server, with Config.WebhookListener.
	webhookLis  net.Listener
	webhookHTTP *http.Server
	webhook     http.Handler // the receiver, with WithEvents
	adminLis    net.Listener
	adminHTTP   *http.Server
	streams     chan struct{} // a slot per open stream, Limits.MaxStreams
	restConn    *grpc.ClientConn
	rest        *runtime.ServeMux
	served      atomic.Bool
	// watchServices are the services whose health follows the event log.
	watchServices []string
	// draining is canceled when the drain begins, ending every stream.
	draining    context.Context
	stopStreams context.CancelFunc
	// notReady is set when shutdown begins (/readyz answers 503), stopping
	// when the drain begins (REST calls refused or cut off are answered
	// with their idempotency key).
	notReady, stopping atomic.Bool
	// cutOff is canceled when the drain times out: it ends the REST face's
	// unary calls still running, as the gRPC server's Stop ends the rest.
	cutOff    context.Context
	cutOffNow context.CancelFunc
}

// New assembles the gateway. It serves nothing until Serve.
func New(cfg Config, opts ...Option) (*Server, error) {
	switch {
	case cfg.Upstream == nil:
		return nil, errors.New("server: Config.Upstream is required")
	case cfg.GRPCListener == nil:
		return nil, errors.New("server: Config.GRPCListener is required")
	case cfg.HTTPListener == nil:
		return nil, errors.New("server: Config.HTTPListener is required")
	}
	o := newOptions(opts)
	o.limits = o.limits.withDefaults()
	lim := o.limits
	s := &Server{
		opts:    o,
		log:     o.logger,
		grpcLis: newLimitListener(cfg.GRPCListener, "grpc", lim.MaxConns, lim.MaxConnsPerIP, o.logger),
		httpLis: newLimitListener(cfg.HTTPListener, "http", lim.MaxConns, lim.MaxConnsPerIP, o.logger),
		memLis:  bufconn.Listen(bufconnSize),
	}
	if cfg.WebhookListener != nil {
		s.webhookLis = newLimitListener(cfg.WebhookListener, "webhook", lim.MaxConns, lim.MaxConnsPerIP, o.logger)
	}
	if cfg.AdminListener != nil {
		s.adminLis = newLimitListener(cfg.AdminListener, "admin", lim.MaxConns, lim.MaxConnsPerIP, o.logger)
	}
	if lim.MaxStreams > 0 {
		s.streams = make(chan struct{}, lim.MaxStreams)
	}
	s.draining, s.stopStreams = context.WithCancel(context.Background())
	s.cutOff, s.cutOffNow = context.WithCancel(context.Background())
	serviceOpts := append([]service.Option{service.WithLogger(s.log), service.WithMetrics(o.metrics)}, o.serviceOpts...)
	if o.events != nil {
		if o.quarantine == nil {
			return nil, errors.New("server: WithEvents needs WithQuarantine: without it one malformed event would hold back every webhook delivery")
		}
		keys := o.webhookKeys
		if keys == nil {
			keys = func(ctx context.Context) (map[string]crypto.PublicKey, error) { return cfg.Upstream.GetVerifyKeys(ctx) }
		}
		recv := webhook.NewReceiver(o.events, o.quarantine, keys,
			append([]webhook.Option{webhook.WithLogger(s.log), webhook.WithMetrics(o.metrics)}, o.receiverOpts...)...)
		// No size cap here (the receiver has its own), but the same time
		// limit for the body as every request.
		s.webhook = limitBody(recv, 0, lim.BodyTimeout)
		serviceOpts = append(serviceOpts, service.WithEvents(o.events))
	}

	// The caller's trace context first, for everything after to see; then
	// metrics, so every call counts, the refused ones too; then logging, so
	// it sees the code recovery made of a panic; then the caller checks, so
	// nothing else runs for a caller refused.
	var unary []grpc.UnaryServerInterceptor
	var steps []streamStep
	var statsHandlers []stats.Handler
	switch {
	case o.tracer == nil:
	case o.tracingOff():
		unary = append(unary, traceContextUnary(o.propagator))
		steps = append(steps, traceContextStream(o.propagator))
	default:
		statsHandlers = append(statsHandlers, o.tracingHandler())
	}
	if o.metrics != nil {
		unary = append(unary, o.metrics.UnaryServerInterceptor())
		steps = append(steps, s.countCalls)
	}
	unary = append(unary, logUnary(s.log), recoverUnary(s.log))
	steps = append(steps, logStream(s.log)) // recovery is streamSteps' own
	if o.guard != nil {
		unary = append(unary, o.guard.UnaryServerInterceptor(), noteCallerUnary)
		steps = append(steps, guardStream(o.guard), noteCallerStream)
	}
	unary = append(unary, o.unary...)
	steps = append(steps, s.limitStreams, s.countStreams, s.endOnShutdown)
	stream := append([]grpc.StreamServerInterceptor{streamSteps(s.log, steps...)}, o.stream...)
	// One chain, for the gRPC server and the REST face's in-process calls.
	unaryChain := chainUnary(unary)
	var grpcOpts []grpc.ServerOption
	if o.tls != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(o.tls.GRPCCredentials()))
	}
	for _, h := range statsHandlers {
		grpcOpts = append(grpcOpts, grpc.StatsHandler(h))
	}
	grpcOpts = append(grpcOpts, []grpc.ServerOption{
		grpc.UnaryInterceptor(unaryChain),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.NumStreamWorkers(streamWorkers()),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.MaxConcurrentStreams(lim.MaxConcurrentStreams),
		grpc.ConnectionTimeout(cmp.Or(lim.HeaderTimeout, 2*time.Minute)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: 2 * time.Minute, Timeout: 20 * time.Second,
			MaxConnectionAge: lim.MaxConnectionAge, MaxConnectionAgeGrace: lim.MaxConnectionAgeGrace,
		}),
	}...)
	s.grpc = grpc.NewServer(grpcOpts...)

	reg := &registrar{Server: s.grpc, methods: map[string]unaryMethod{}}
	names := service.Register(reg, cfg.Upstream, serviceOpts...)
	if o.events != nil {
		// The operator's surface of the quarantine: gRPC, so that the caller
		// authorization of every other RPC covers it too.
		names = append(names, service.RegisterQuarantine(reg, o.quarantine, o.events, serviceOpts...))
		s.watchServices = names
	}
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for _, n := range append(names, "") {
		s.health.SetServingStatus(n, healthpb.HealthCheckResponse_SERVING)
	}
	reflection.Register(s.grpc)
	if o.metrics != nil {
		o.metrics.InitializeGRPC(s.grpc) // every method's series from the start, at zero
	}

	conn, err := dialInMemory(s.memLis)
	if err != nil {
		return nil, fmt.Errorf("server: in-memory connection: %w", err)
	}
	s.restConn = conn
	rest, err := newRESTMux(&inProcessConn{streams: conn, methods: reg.methods, interceptor: unaryChain, stats: statsHandlers,
		refuse: s.stopping.Load, cutOff: s.cutOff}, o.guard, s.restError)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.rest = rest
	h, err := s.httpHandler(rest)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.http = s.newHTTPServer(h)
	if s.webhookLis != nil {
		s.webhookHTTP = s.newHTTPServer(s.webhookHandler())
	}
	if s.adminLis != nil {
		s.adminHTTP = s.newHTTPServer(s.adminHandler())
		s.adminHTTP.TLSConfig = nil // plain HTTP, for the monitoring's scrapes
	}
	return s, nil
}

// newHTTPServer serves h with the gateway's limits. There is no
// WriteTimeout (nor ReadTimeout, which would also end a long answer):
// streams stay open for as long as they run; the time to send a body is
// bounded per request by limitBody instead.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.opts.limits.HeaderTimeout,
		IdleTimeout:       s.opts.limits.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.opts.tls != nil {
		hs.TLSConfig = s.opts.tls.HTTP()
	}
	return hs
}

// serveHTTP serves hs on lis, over TLS when the gateway has it.
func (s *Server) serveHTTP(hs *http.Server, lis net.Listener) error {
	if s.opts.tls != nil {
		return hs.ServeTLS(lis, "", "") // the certificate comes from hs.TLSConfig
	}
	return hs.Serve(lis)
}

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP listener is bound to.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// WebhookAddr is the address the webhook listener is bound to, "" without
// one (the HTTP listener then serves the webhook).
func (s *Server) WebhookAddr() string {
	if s.webhookLis == nil {
		return ""
	}
	return s.webhookLis.Addr().String()
}

// Serve serves until ctx is done, then shuts down gracefully (lifecycle.go):
// not ready while still serving for the shutdown delay, then new calls
// refused, streams ended with their resume token, and calls in flight given
// up to the shutdown timeout to finish before they are cut off. It returns
// nil after a shutdown caused by ctx, or the error that stopped a listener.
// It may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("server: Serve called twice")
	}
	go s.watchLogHealth(s.draining)
	errc := make(chan error, 5)
	go func() { errc <- wrapServeErr("gRPC", s.grpc.Serve(s.grpcLis)) }()
	go func() { errc <- wrapServeErr("in-memory gRPC", s.grpc.Serve(s.memLis)) }()
	go func() { errc <- wrapServeErr("HTTP", s.serveHTTP(s.http, s.httpLis)) }()
	if s.webhookHTTP != nil {
		go func() { errc <- wrapServeErr("webhook", s.serveHTTP(s.webhookHTTP, s.webhookLis)) }()
	}
	if s.adminHTTP != nil {
		go func() { errc <- wrapServeErr("admin", s.adminHTTP.Serve(s.adminLis)) }()
	}
	s.log.InfoContext(ctx, "gateway serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "webhook", cmp.Or(s.WebhookAddr(), s.HTTPAddr()),
		"admin", s.AdminAddr())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.shutdown(err == nil)
	return err
}

func wrapServeErr(what string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %s listener stopped unexpectedly", what)
	}
	return fmt.Errorf("server: serving %s: %w", what, err)
}
