package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The REST face's connection to the services. A unary call runs in the
// REST request's goroutine, through the gRPC server's own interceptor chain
// and stats handlers, as the gRPC server runs it, but without a gRPC
// transport in between: a call over the in-memory connection cost a
// second gRPC round trip (its encoding, HTTP/2 framing, a goroutine per
// call and two writer goroutines), about as much CPU as the gRPC face's
// whole transport. Streams need flow control and go over the in-memory
// connection as before. Either way the services see the same call: the
// caller's metadata as incoming metadata, the in-memory peer (whose
// forwarded identity the guard believes), the method, and the header and
// trailer they set.

// unaryMethod is one registered unary RPC.
type unaryMethod struct {
	impl    any
	handler grpc.MethodHandler
}

// registrar registers services on the gRPC server and keeps their unary
// methods for the in-process connection.
type registrar struct {
	*grpc.Server
	methods map[string]unaryMethod // by full method name
}

func (r *registrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.Server.RegisterService(desc, impl)
	for _, m := range desc.Methods {
		r.methods["/"+desc.ServiceName+"/"+m.MethodName] = unaryMethod{impl: impl, handler: m.Handler}
	}
}

// inProcessConn is a grpc.ClientConnInterface for grpc-gateway's generated
// client handlers.
type inProcessConn struct {
	streams     *grpc.ClientConn // the in-memory connection
	methods     map[string]unaryMethod
	interceptor grpc.UnaryServerInterceptor // the server's chain
	stats       []stats.Handler             // the server's
	// refuse says whether new calls are refused (the drain has begun);
	// cutOff ends the calls still running when it is done.
	refuse func() bool
	cutOff context.Context
}

// inMemoryAddr is the peer address of REST calls: the network of the
// in-memory connection (bufconn), which the guard and the request log
// recognise as the REST face.
type inMemoryAddr struct{}

func (inMemoryAddr) Network() string { return "bufconn" }
func (inMemoryAddr) String() string  { return "bufconn" }

var inMemoryPeer = &peer.Peer{Addr: inMemoryAddr{}, LocalAddr: inMemoryAddr{}}

// errRefused is a call refused by the drain: bare, as the in-memory
// connection's would be, so that the REST face answers it with the
// caller's idempotency key (restError).
var errRefused = status.Error(codes.Unavailable, "the gateway is shutting down")

// errCutOff is a call the cut-off ended, bare for the same reason.
var errCutOff = status.Error(codes.Unavailable, "the gateway shut down before the call finished")

func (c *inProcessConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	m, ok := c.methods[method]
	if !ok {
		return c.streams.Invoke(ctx, method, args, reply, opts...)
	}
	if c.refuse() {
		return errRefused
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.cutOff, cancel)
	defer stop()

	// What the server side of a call sees: the caller's metadata coming
	// in (and none of it going out again), the peer, the method.
	md, _ := metadata.FromOutgoingContext(ctx)
	ctx = metadata.NewIncomingContext(metadata.NewOutgoingContext(ctx, nil), md)
	ctx = peer.NewContext(ctx, inMemoryPeer)
	st := &inProcessStream{method: method}
	ctx = grpc.NewContextWithServerTransportStream(ctx, st)
	begin := time.Now()
	for _, h := range c.stats {
		ctx = h.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
		h.HandleRPC(ctx, &stats.Begin{BeginTime: begin})
	}

	dec := func(in any) error {
		proto.Merge(in.(proto.Message), args.(proto.Message))
		return nil
	}
	resp, err := m.handler(m.impl, ctx, dec, c.interceptor)
	switch {
	case err != nil && c.cutOff.Err() != nil:
		// Ended by the cut-off, whatever the handler made of it: as the
		// gRPC server's Stop would end it, bare.
		err = errCutOff
	case err != nil:
		// As the gRPC server reports a handler's error.
		s, ok := status.FromError(err)
		if !ok {
			s = status.FromContextError(err)
		}
		err = s.Err()
	default:
		proto.Merge(reply.(proto.Message), resp.(proto.Message))
	}
	for _, h := range c.stats {
		h.HandleRPC(ctx, &stats.End{BeginTime: begin, EndTime: time.Now(), Error: err})
	}
	header, trailer := st.metadata()
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = trailer
		case grpc.PeerCallOption:
			*o.PeerAddr = *inMemoryPeer
		}
	}
	return err
}

func (c *inProcessConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.streams.NewStream(ctx, desc, method, opts...)
}

// inProcessStream is the server transport stream of an in-process call: it
// keeps the header and trailer the handler sets.
type inProcessStream struct {
	method string

	mu      sync.Mutex
	header  metadata.MD
	trailer metadata.MD
}

func (s *inProcessStream) Method() string { return s.method }

func (s *inProcessStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	s.header = metadata.Join(s.header, md)
	s.mu.Unlock()
	return nil
}

func (s *inProcessStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *inProcessStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	s.trailer = metadata.Join(s.trailer, md)
	s.mu.Unlock()
	return nil
}

func (s *inProcessStream) metadata() (header, trailer metadata.MD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.header, s.trailer
}

// chainUnary is interceptors as one, the first outermost: the gRPC
// server's chain, and the in-process connection's.
func chainUnary(interceptors []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return chainedHandler(interceptors, info, handler)(ctx, req)
	}
}

func chainedHandler(interceptors []grpc.UnaryServerInterceptor, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if len(interceptors) == 0 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return interceptors[0](ctx, req, info, chainedHandler(interceptors[1:], info, final))
	}
}
