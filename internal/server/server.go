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
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

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
	webhook     http.Handler  // the receiver, with WithEvents
	streams     chan struct{} // a slot per open stream, Limits.MaxStreams
	restConn    *grpc.ClientConn
	rest        *runtime.ServeMux
	served      atomic.Bool
	// watchServices are the services whose health follows the event log.
	watchServices []string
	// draining is canceled when shutdown begins, ending every stream.
	draining    context.Context
	stopStreams context.CancelFunc
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
	if lim.MaxStreams > 0 {
		s.streams = make(chan struct{}, lim.MaxStreams)
	}
	s.draining, s.stopStreams = context.WithCancel(context.Background())
	serviceOpts := append([]service.Option{service.WithLogger(s.log)}, o.serviceOpts...)
	if o.events != nil {
		if o.quarantine == nil {
			return nil, errors.New("server: WithEvents needs WithQuarantine: without it one malformed event would hold back every webhook delivery")
		}
		keys := o.webhookKeys
		if keys == nil {
			keys = func(ctx context.Context) (map[string]crypto.PublicKey, error) { return cfg.Upstream.GetVerifyKeys(ctx) }
		}
		recv := webhook.NewReceiver(o.events, o.quarantine, keys, append([]webhook.Option{webhook.WithLogger(s.log)}, o.receiverOpts...)...)
		// No size cap here (the receiver has its own), but the same time
		// limit for the body as every request.
		s.webhook = limitBody(recv, 0, lim.BodyTimeout)
		serviceOpts = append(serviceOpts, service.WithEvents(o.events))
	}

	// Logging outermost, so it sees the code recovery made of a panic, then
	// the caller checks, so nothing else runs for a caller refused.
	unary := []grpc.UnaryServerInterceptor{logUnary(s.log), recoverUnary(s.log)}
	stream := []grpc.StreamServerInterceptor{logStream(s.log), recoverStream(s.log)}
	if o.guard != nil {
		unary = append(unary, o.guard.UnaryServerInterceptor(), noteCallerUnary)
		stream = append(stream, o.guard.StreamServerInterceptor(), noteCallerStream)
	}
	unary = append(unary, o.unary...)
	stream = append(append(stream, s.limitStreams, s.endOnShutdown), o.stream...)
	var creds []grpc.ServerOption
	if o.tls != nil {
		creds = append(creds, grpc.Creds(o.tls.GRPCCredentials()))
	}
	grpcOpts := append(creds, []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.MaxConcurrentStreams(lim.MaxConcurrentStreams),
		grpc.ConnectionTimeout(cmp.Or(lim.HeaderTimeout, 2*time.Minute)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: 2 * time.Minute, Timeout: 20 * time.Second,
			MaxConnectionAge: lim.MaxConnectionAge, MaxConnectionAgeGrace: lim.MaxConnectionAgeGrace,
		}),
	}...)
	grpcOpts = append(grpcOpts, o.grpcOpts...)
	s.grpc = grpc.NewServer(grpcOpts...)

	names := service.Register(s.grpc, cfg.Upstream, serviceOpts...)
	if o.events != nil {
		// The operator's surface of the quarantine: gRPC, so that the caller
		// authorization of every other RPC covers it too.
		names = append(names, service.RegisterQuarantine(s.grpc, o.quarantine, o.events, serviceOpts...))
		s.watchServices = names
	}
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for _, n := range append(names, "") {
		s.health.SetServingStatus(n, healthpb.HealthCheckResponse_SERVING)
	}
	reflection.Register(s.grpc)

	conn, err := dialInMemory(s.memLis)
	if err != nil {
		return nil, fmt.Errorf("server: in-memory connection: %w", err)
	}
	s.restConn = conn
	rest, err := newRESTMux(conn, o.guard)
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

// Serve serves until ctx is done, then shuts down gracefully: health turns
// NOT_SERVING, new connections are refused, and calls in flight get up to
// the shutdown timeout to finish before they are cut off. It returns nil
// after a shutdown caused by ctx, or the error that stopped a listener. It
// may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("server: Serve called twice")
	}
	go s.watchLogHealth(s.draining)
	errc := make(chan error, 4)
	go func() { errc <- wrapServeErr("gRPC", s.grpc.Serve(s.grpcLis)) }()
	go func() { errc <- wrapServeErr("in-memory gRPC", s.grpc.Serve(s.memLis)) }()
	go func() { errc <- wrapServeErr("HTTP", s.serveHTTP(s.http, s.httpLis)) }()
	if s.webhookHTTP != nil {
		go func() { errc <- wrapServeErr("webhook", s.serveHTTP(s.webhookHTTP, s.webhookLis)) }()
	}
	s.log.InfoContext(ctx, "gateway serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "webhook", cmp.Or(s.WebhookAddr(), s.HTTPAddr()))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.shutdown()
	return err
}

func wrapServeErr(what string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %s listener stopped unexpectedly", what)
	}
	return fmt.Errorf("server: serving %s: %w", what, err)
}

// shutdown drains both servers together (a REST call in flight is also a
// gRPC call in flight), within the shutdown timeout, then cuts off the rest.
func (s *Server) shutdown() {
	s.health.Shutdown()
	// Streams never end by themselves; a Watch resumes from its last token.
	s.stopStreams()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.http.Shutdown(ctx) })
	if s.webhookHTTP != nil {
		wg.Go(func() { _ = s.webhookHTTP.Shutdown(ctx) })
	}
	wg.Go(s.grpc.GracefulStop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown timeout: cutting off the calls still running", "timeout", s.opts.shutdownTimeout)
		_ = s.http.Close()
		if s.webhookHTTP != nil {
			_ = s.webhookHTTP.Close()
		}
		s.grpc.Stop()
		<-done
	}
	_ = s.restConn.Close()
	s.log.Info("gateway stopped")
}
