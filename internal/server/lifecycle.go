package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/upvest-gateway/gateway/internal/service"
)

// How the gateway stops, once Serve's context is done (SIGTERM):
//
//  1. Not ready: /readyz (on the HTTP and the admin listener) answers 503 and
//     the gRPC health service NOT_SERVING for every service, while every
//     listener goes on serving for the shutdown delay (WithShutdownDelay), so
//     that load balancers and Kubernetes endpoints stop sending new calls
//     before any is refused. /healthz stays 200: the process is alive.
//  2. Drain: new connections and calls are refused; open streams end with
//     UNAVAILABLE (reason SHUTTING_DOWN) carrying the last resume token sent
//     in the ErrorInfo's metadata, so a client resumes on another replica
//     with no gap; calls in flight get up to the drain timeout
//     (WithShutdownTimeout) to finish.
//  3. Cut-off: the calls still running are ended. A REST call among them is
//     answered with a problem+json 503 naming its idempotency key (reason
//     OUTCOME_UNKNOWN: retry with it), not left with an empty reply.
//  4. The admin listener closes last, so metrics can be scraped throughout.
//
// Serve then returns; the caller closes the event log and NATS after it, so
// calls in flight could still record their outcome in the idempotency store.

// cutOffGrace is how long the REST face gets to answer the calls the cut-off
// ended before its connections are closed.
const cutOffGrace = 2 * time.Second

// shutdown stops the gateway as described above; delay is false when a
// listener failed, and there is nothing to wait for.
func (s *Server) shutdown(delay bool) {
	s.notReady.Store(true)
	s.health.Shutdown() // every service NOT_SERVING; later updates are ignored
	if d := s.opts.shutdownDelay; delay && d > 0 {
		s.log.Info("shutting down: not ready, still serving while endpoints update", "delay", d)
		time.Sleep(d)
	}
	s.log.Info("shutting down: draining calls in flight", "timeout", s.opts.shutdownTimeout)
	s.stopping.Store(true)
	// Streams never end by themselves; ended now, with the token to resume
	// from, the drain does not wait for them.
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
		s.log.Warn("shutdown: drain timeout; cutting off the calls still running", "timeout", s.opts.shutdownTimeout)
		// The calls first: the REST calls ended are answered (restError)
		// while their HTTP connections are still open.
		s.cutOffNow()
		s.grpc.Stop()
		grace, cancel := context.WithTimeout(context.Background(), cutOffGrace)
		defer cancel()
		_ = s.http.Shutdown(grace)
		_ = s.http.Close()
		if s.webhookHTTP != nil {
			_ = s.webhookHTTP.Close()
		}
		<-done
	}
	_ = s.restConn.Close()
	if s.adminHTTP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cutOffGrace)
		defer cancel()
		_ = s.adminHTTP.Shutdown(ctx)
		_ = s.adminHTTP.Close()
	}
	s.log.Info("gateway stopped")
}

// ReasonShuttingDown is the ErrorInfo reason of a stream the drain ended,
// and of a call it refused or cut off whose outcome is not in doubt.
const ReasonShuttingDown = "SHUTTING_DOWN"

// shuttingDown ends a stream when the drain begins: UNAVAILABLE, and the
// last resume token sent, for a client that resumes elsewhere.
func shuttingDown(token string) error {
	st := status.New(codes.Unavailable, "the gateway is shutting down; reconnect and resume with the last resume_token")
	ei := &errdetails.ErrorInfo{Reason: ReasonShuttingDown, Domain: service.GatewayErrorDomain}
	if token != "" {
		ei.Metadata = map[string]string{ResumeTokenMetadata: token}
	}
	if d, err := st.WithDetails(ei); err == nil {
		st = d
	}
	return st.Err()
}

// ResumeTokenMetadata is the ErrorInfo metadata key of the resume token a
// stream ended by shutdown carries: the last one it sent.
const ResumeTokenMetadata = "resume_token"

// errShuttingDown ends a stream's context when the drain begins.
var errShuttingDown = shuttingDown("")

// endOnShutdown ends a stream with UNAVAILABLE once the drain begins. Event
// streams run until the client leaves, so the drain would otherwise always
// wait out its timeout and then cut them off without a word; ended this way,
// with the last token it sent, a client resumes elsewhere with no gap.
func (s *Server) endOnShutdown(ss grpc.ServerStream, _ *grpc.StreamServerInfo) (grpc.ServerStream, func(error) error, error) {
	ctx, cancel := context.WithCancelCause(ss.Context())
	stop := context.AfterFunc(s.draining, func() { cancel(errShuttingDown) })
	ts := &tokenStream{ServerStream: ss}
	ts.ctx = service.WithSentTokenRecorder(ctx, ts.note)
	return ts, func(err error) error {
		stop()
		cancel(nil)
		if s.draining.Err() != nil && err != nil {
			if c := status.Code(err); c == codes.Unavailable || c == codes.Canceled {
				return shuttingDown(ts.last())
			}
		}
		return err
	}, nil
}

// tokenStream is a server stream with its own context that remembers the
// resume_token of the last message sent: read from a message, or told by
// the service for a pre-encoded one (service.WithSentTokenRecorder).
type tokenStream struct {
	grpc.ServerStream
	ctx   context.Context
	mu    sync.Mutex
	token string
}

func (s *tokenStream) Context() context.Context { return s.ctx }

func (s *tokenStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if pm, ok := m.(proto.Message); ok && err == nil {
		if token, _ := streamFields(pm); token != "" {
			s.note(token)
		}
	}
	return err
}

func (s *tokenStream) note(token string) {
	s.mu.Lock()
	s.token = token
	s.mu.Unlock()
}

func (s *tokenStream) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// restError is the REST face's error handler: problemErrorHandler, but a
// call the drain refused or the cut-off ended (a bare UNAVAILABLE or
// CANCELED from the in-memory connection, where the gateway's own statuses
// always carry an ErrorInfo) is answered 503 with the idempotency key the
// caller sent, so that it retries with it elsewhere.
func (s *Server) restError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	if !s.stopping.Load() || (st.Code() != codes.Unavailable && st.Code() != codes.Canceled) || len(st.Details()) > 0 {
		problemErrorHandler(ctx, mux, m, w, r, err)
		return
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" {
		key = requestIDOfBody(r.Context())
	}
	if len(key) > 64 || !printableASCII(key) {
		key = "" // not a key the services would have taken
	}
	if key != "" {
		w.Header().Set(HeaderIdempotencyKey, key)
	}
	writeProblem(w, http.StatusServiceUnavailable, cutOff(key))
}

// cutOff is the status of a REST call the shutdown refused or cut off. With
// its key, whether it acted is unknown, and a retry with the key settles it.
func cutOff(key string) *status.Status {
	retry := &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}
	if key == "" {
		return gatewayStatus(codes.Unavailable, ReasonShuttingDown, "the gateway is shutting down; retry the call", retry)
	}
	st := status.New(codes.Unavailable, "the gateway shut down before the call finished, so whether it took effect is unknown: "+
		"retry with the same request_id (Idempotency-Key "+key+"); the retry returns what happened and never acts twice")
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: "OUTCOME_UNKNOWN", Domain: service.GatewayErrorDomain,
		Metadata: map[string]string{"idempotency_key": key}}, retry); err == nil {
		st = d
	}
	return st
}

// maxKeptBody is how much of a REST request's body is kept to find its
// request_id should the call be cut off; a create's body is a few hundred
// bytes.
const maxKeptBody = 16 << 10

type keptBodyKey struct{}

// keptBody is the start of a request's body, as it was read.
type keptBody struct {
	io.ReadCloser
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *keptBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	if room := maxKeptBody - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(n, room)])
	}
	b.mu.Unlock()
	return n, err
}

// keepBody keeps the start of each request body that next reads, for
// requestIDOfBody.
func keepBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Body != nil && r.Body != http.NoBody {
			kb := &keptBody{ReadCloser: r.Body}
			r = r.WithContext(context.WithValue(r.Context(), keptBodyKey{}, kb))
			r.Body = kb
		}
		next.ServeHTTP(w, r)
	})
}

// requestIDOfBody is the request_id of the JSON body read so far, "" if it
// has none (or it was not read to its end).
func requestIDOfBody(ctx context.Context) string {
	kb, ok := ctx.Value(keptBodyKey{}).(*keptBody)
	if !ok {
		return ""
	}
	kb.mu.Lock()
	defer kb.mu.Unlock()
	var body struct {
		RequestID      string `json:"request_id"`
		RequestIDCamel string `json:"requestId"`
	}
	if json.Unmarshal(kb.buf.Bytes(), &body) != nil {
		return ""
	}
	if body.RequestID != "" {
		return body.RequestID
	}
	return body.RequestIDCamel
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
