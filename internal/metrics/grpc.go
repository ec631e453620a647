package metrics

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcServer is the gRPC server's metrics, under the names and labels of
// go-grpc-middleware's Prometheus provider, which dashboards and alert
// rules know. Each method's series are resolved once: a message of an
// event stream, sent a hundred thousand times a second to a thousand
// subscribers, costs one atomic add, where a label lookup per message was
// a tenth of the gateway's CPU.
type grpcServer struct {
	started, received, sent *prometheus.CounterVec
	handled                 *prometheus.CounterVec
	handling                *prometheus.HistogramVec

	// methods are the series by full method name, read without locking
	// (every call looks its method up) and replaced, copied, under mu.
	methods atomic.Pointer[map[string]*RPCSeries]
	mu      sync.Mutex
}

func newGRPCServer() *grpcServer {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	return &grpcServer{
		started:  counter("grpc_server_started_total", "Total number of RPCs started on the server.", labels),
		handled:  counter("grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.", append(labels, "grpc_code")),
		received: counter("grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", labels),
		sent:     counter("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", labels),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "grpc_server_handling_seconds",
			Help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.", Buckets: latencyBuckets}, labels),
	}
}

func (g *grpcServer) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.started, g.handled, g.received, g.sent, g.handling}
}

// RPCSeries are one gRPC method's series.
type RPCSeries struct {
	started, received, sent prometheus.Counter
	handling                prometheus.Observer
	handled                 [codes.Unauthenticated + 1]prometheus.Counter
}

// series are fullMethod's series, made on first use; every method's
// handled series exist from then on, one per code, at zero.
func (g *grpcServer) series(fullMethod, typ string) *RPCSeries {
	if s := g.lookup(fullMethod); s != nil {
		return s
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.lookup(fullMethod); s != nil {
		return s
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	s := &RPCSeries{
		started:  g.started.WithLabelValues(typ, service, method),
		received: g.received.WithLabelValues(typ, service, method),
		sent:     g.sent.WithLabelValues(typ, service, method),
		handling: g.handling.WithLabelValues(typ, service, method),
	}
	for c := range s.handled {
		s.handled[c] = g.handled.WithLabelValues(typ, service, method, codes.Code(c).String())
	}
	methods := map[string]*RPCSeries{fullMethod: s}
	if old := g.methods.Load(); old != nil {
		maps.Copy(methods, *old)
	}
	g.methods.Store(&methods)
	return s
}

func (g *grpcServer) lookup(fullMethod string) *RPCSeries {
	if m := g.methods.Load(); m != nil {
		return (*m)[fullMethod]
	}
	return nil
}

func rpcType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	}
	return "unary"
}

// InitializeGRPC makes every method's series of the gRPC server s, at zero,
// so that a dashboard shows them before the first call.
func (m *Metrics) InitializeGRPC(s *grpc.Server) {
	if m == nil {
		return
	}
	for service, info := range s.GetServiceInfo() {
		for _, method := range info.Methods {
			m.grpc.series("/"+service+"/"+method.Name, rpcType(method.IsClientStream, method.IsServerStream))
		}
	}
}

// UnaryServerInterceptor counts unary calls: started, one message
// received, one sent if it succeeded, handled by code, and handling time.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		s := m.RPCStarted(info.FullMethod, false, false)
		s.Received()
		start := time.Now()
		resp, err := handler(ctx, req)
		if err == nil {
			s.Sent()
		}
		s.Handled(err, time.Since(start))
		return resp, err
	}
}

// RPCStarted records a call of fullMethod starting, and returns its
// series, for the messages it receives and sends and how it ends.
func (m *Metrics) RPCStarted(fullMethod string, clientStream, serverStream bool) *RPCSeries {
	if m == nil {
		return nil
	}
	s := m.grpc.series(fullMethod, rpcType(clientStream, serverStream))
	s.started.Inc()
	return s
}

// Received records a message received.
func (s *RPCSeries) Received() {
	if s != nil {
		s.received.Inc()
	}
}

// Sent records a message sent.
func (s *RPCSeries) Sent() {
	if s != nil {
		s.sent.Inc()
	}
}

// Handled records the call's end, with the code of err, after d.
func (s *RPCSeries) Handled(err error, d time.Duration) {
	if s == nil {
		return
	}
	s.handled[code(err)].Inc()
	s.handling.Observe(d.Seconds())
}

// code is err's gRPC code; a context's error counts as the code gRPC
// answers it with.
func code(err error) codes.Code {
	c := status.Code(err)
	if c == codes.Unknown {
		switch {
		case errors.Is(err, context.Canceled):
			c = codes.Canceled
		case errors.Is(err, context.DeadlineExceeded):
			c = codes.DeadlineExceeded
		}
	}
	if c > codes.Unauthenticated {
		c = codes.Unknown
	}
	return c
}
