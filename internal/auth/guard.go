package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Guard authenticates, authorizes and limits gRPC calls. Its interceptors
// run, in order: authenticate → the method granted? → within the caller's
// limits? → the request's account group granted? → the handler, whose
// context then carries the Caller (CallerFromContext) and its grant
// (CheckAccountGroup, Restricted). It is safe for concurrent use.
type Guard struct {
	log           *slog.Logger
	jwt           *JWTVerifier
	anonymous     bool
	policy        func() *Policy
	limits        *limiter
	public        map[string]bool
	noCredentials string
}

// NewGuard makes a Guard. Callers are authenticated by verified client
// certificates (mutual TLS on the listener), by bearer tokens with WithJWT,
// or not at all with WithUnauthenticated. A policy (WithPolicy or
// WithPolicyFile) is required unless callers are unauthenticated, where its
// absence allows everything.
func NewGuard(opts ...Option) (*Guard, error) {
	var o guardOptions
	o.logger = slog.Default()
	for _, opt := range opts {
		if opt != nil {
			opt.applyGuard(&o)
		}
	}
	g := &Guard{log: o.logger, jwt: o.jwt, anonymous: o.anonymous, limits: newLimiter(), public: map[string]bool{}}
	switch {
	case o.policy != nil && o.policyFile != nil:
		return nil, errors.New("auth: WithPolicy and WithPolicyFile exclude each other")
	case o.anonymous && o.jwt != nil:
		return nil, errors.New("auth: WithUnauthenticated and WithJWT exclude each other")
	case o.policy != nil:
		p := o.policy
		g.policy = func() *Policy { return p }
	case o.policyFile != nil:
		g.policy = o.policyFile.Policy
	case o.anonymous:
		p := AllowAll()
		g.policy = func() *Policy { return p }
	default:
		return nil, errors.New("auth: a policy (WithPolicy or WithPolicyFile) is required unless callers are unauthenticated")
	}
	for _, m := range o.public {
		g.public[m] = true
	}
	g.noCredentials = "the call carries no client certificate"
	if g.jwt != nil {
		g.noCredentials += " and no bearer token"
	}
	return g, nil
}

// UnaryServerInterceptor applies the guard to unary calls.
func (g *Guard) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if g.public[info.FullMethod] {
			return handler(ctx, req)
		}
		ctx, grant, err := g.admit(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if err := checkMessage(grant, info.FullMethod, req); err != nil {
			g.refused(ctx, info.FullMethod, err)
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor applies the guard to streams: the open stream
// counts against the caller's limit until the handler returns, and every
// message received that names an account group is checked (for a server
// stream, its one request).
func (g *Guard) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		guarded, release, err := g.AdmitStream(ss, info.FullMethod)
		if err != nil {
			return err
		}
		defer release()
		return handler(srv, guarded)
	}
}

// AdmitStream is StreamServerInterceptor's work before the handler, for an
// interceptor that runs several such steps at one stack depth: the stream
// to hand on, and release, to call when the handler has returned.
func (g *Guard) AdmitStream(ss grpc.ServerStream, method string) (grpc.ServerStream, func(), error) {
	if g.public[method] {
		return ss, func() {}, nil
	}
	ctx, grant, err := g.admit(ss.Context(), method)
	if err != nil {
		return nil, nil, err
	}
	release, ok := g.limits.openStream(g.policy(), grant)
	if !ok {
		return nil, nil, exhausted(ReasonCallerStreamLimit,
			fmt.Sprintf("%s: this caller has as many streams open as it may (%d); retry when one has ended", method, grant.limits.Streams),
			method, streamRetryAfter)
	}
	return &guardedStream{ServerStream: ss, ctx: ctx, guard: g, grant: grant, method: method}, release, nil
}

// admit authenticates the caller, checks the method and takes a token from
// the caller's bucket; the context returned carries the caller and grant.
func (g *Guard) admit(ctx context.Context, method string) (context.Context, *Grant, error) {
	caller, err := g.authenticate(ctx)
	if err != nil {
		g.refused(ctx, method, err)
		return nil, nil, err
	}
	ctx = context.WithValue(ctx, callerKey{}, caller)
	p := g.policy()
	grant, ok := p.Grant(caller.Identity)
	if !ok {
		err := refusal(codes.Unauthenticated, ReasonUnknownCaller,
			fmt.Sprintf("caller %q is not known to the gateway's policy", caller.Identity), nil)
		g.refused(ctx, method, err)
		return nil, nil, err
	}
	if !grant.AllowsMethod(method) {
		err := refusal(codes.PermissionDenied, ReasonMethodNotAllowed,
			fmt.Sprintf("this caller may not call %s", method), map[string]string{"method": method})
		g.refused(ctx, method, err)
		return nil, nil, err
	}
	if retryAfter, ok := g.limits.call(p, grant); !ok {
		return nil, nil, exhausted(ReasonCallerRateLimited,
			fmt.Sprintf("%s: this caller is over its rate of %g calls per second; retry after the delay given", method, grant.limits.CallsPerSecond),
			method, retryAfter)
	}
	return withGrant(ctx, grant), grant, nil
}

// refused logs a refusal of authentication or authorization: who (when
// known), what, and why, never credentials. Limits are not logged here; the
// request log has their code and reason.
func (g *Guard) refused(ctx context.Context, method string, err error) {
	attrs := []slog.Attr{slog.String("method", method), slog.String("code", status.Code(err).String())}
	if c, ok := CallerFromContext(ctx); ok {
		attrs = append(attrs, slog.String("caller", c.Identity), slog.String("source", string(c.Source)))
	}
	attrs = append(attrs, slog.String("transport", transport(ctx)), slog.String("why", status.Convert(err).Message()))
	g.log.LogAttrs(ctx, slog.LevelWarn, "auth: call refused", attrs...)
}

func transport(ctx context.Context) string {
	if fromREST(ctx) {
		return "rest"
	}
	return "grpc"
}

// guardedStream is a server stream whose context carries the caller and
// grant, and whose received messages are checked for their account group.
type guardedStream struct {
	grpc.ServerStream
	ctx    context.Context
	guard  *Guard
	grant  *Grant
	method string
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := checkMessage(s.grant, s.method, m); err != nil {
		s.guard.refused(s.ctx, s.method, err)
		return err
	}
	return nil
}
