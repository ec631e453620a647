package server

import (
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
}

// WebhookPath is where Upvest delivers webhooks, with WithEvents.
const WebhookPath = "/webhooks/upvest"

// Server is the assembled gateway.
type Server struct {
	opts     options
	log      *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	memLis   *bufconn.Listener
	restConn *grpc.ClientConn
	rest     *runtime.ServeMux
	served   atomic.Bool
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
	s := &Server{
		opts:    o,
		log:     o.logger,
		grpcLis: cfg.GRPCListener,
		httpLis: cfg.HTTPListener,
		memLis:  bufconn.Listen(bufconnSize),
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
		s.opts.httpRoutes = append(s.opts.httpRoutes, httpRoute{http.MethodPost + " " + WebhookPath, recv})
		serviceOpts = append(serviceOpts, service.WithEvents(o.events))
	}

	// Logging outermost, so it sees the code recovery made of a panic.
	unary := append([]grpc.UnaryServerInterceptor{logUnary(s.log), recoverUnary(s.log)}, o.unary...)
	stream := append([]grpc.StreamServerInterceptor{logStream(s.log), recoverStream(s.log), s.endOnShutdown}, o.stream...)
	grpcOpts := append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	}, o.grpcOpts...)
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
	rest, err := newRESTMux(conn)
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
	s.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP listener is bound to.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

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
	errc := make(chan error, 3)
	go func() { errc <- wrapServeErr("gRPC", s.grpc.Serve(s.grpcLis)) }()
	go func() { errc <- wrapServeErr("in-memory gRPC", s.grpc.Serve(s.memLis)) }()
	go func() { errc <- wrapServeErr("HTTP", s.http.Serve(s.httpLis)) }()
	s.log.InfoContext(ctx, "gateway serving", "grpc", s.GRPCAddr(), "http", s.HTTPAddr())

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
	wg.Go(s.grpc.GracefulStop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown timeout: cutting off the calls still running", "timeout", s.opts.shutdownTimeout)
		_ = s.http.Close()
		s.grpc.Stop()
		<-done
	}
	_ = s.restConn.Close()
	s.log.Info("gateway stopped")
}
