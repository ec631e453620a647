package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/upvest-gateway/gateway/gen/openapi"
)

const (
	maxHeaderBytes    = 64 << 10
	readyCheckTimeout = 2 * time.Second
)

// httpHandler routes the HTTP listener: the REST face under /v1/ (routed
// by its OpenAPI description, contract.go; its streams in stream.go),
// gRPC-Web under /<service>/ (browser.go), the OpenAPI description, /healthz, /readyz, and the
// routes added with WithHTTPHandler (and WithEvents).
func (s *Server) httpHandler(rest http.Handler) (h http.Handler, err error) {
	mux := http.NewServeMux()
	defer func() {
		// ServeMux panics on a malformed or conflicting pattern.
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("server: HTTP route: %v", p)
		}
	}()
	v1, err := s.restHandler(openapi.Gateway, rest)
	if err != nil {
		return nil, err
	}
	// keepBody outside: the strict decoder reads limitBody's reader itself.
	mux.Handle("/v1/", keepBody(limitBody(v1, s.opts.maxBodyBytes, s.opts.limits.BodyTimeout)))
	if s.webhook != nil && s.webhookLis == nil {
		mux.Handle(http.MethodPost+" "+WebhookPath, s.webhook)
	}
	grpcWeb, services, err := s.grpcWebHandler()
	if err != nil {
		return nil, err
	}
	for _, name := range services {
		mux.Handle("POST /"+name+"/", limitBody(grpcWeb, s.opts.maxBodyBytes, s.opts.limits.BodyTimeout))
	}
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	for _, r := range s.opts.httpRoutes {
		if r.handler == nil {
			return nil, fmt.Errorf("server: WithHTTPHandler(%q): nil handler", r.pattern)
		}
		mux.Handle(r.pattern, r.handler)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, gatewayStatus(codes.NotFound, ReasonNoRoute, "no such route"))
	})
	return withCORS(s.opts.cors, mux)
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openapi.Gateway)))
	_, _ = w.Write(openapi.Gateway)
}

// healthz is the liveness check: 200 for as long as the process serves,
// shutdown included (a failing liveness probe would have the process killed
// in the middle of its drain).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"SERVING"}`+"\n")
}

// readyz says whether the replica should get traffic: not once shutdown
// began, and with WithEvents not while the event log cannot be reached (a
// webhook could not be stored without it). healthz stays a liveness check:
// restarting the gateway does not bring NATS back.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.notReady.Load() {
		writeProblem(w, http.StatusServiceUnavailable, status.New(codes.Unavailable, "shutting down"))
		return
	}
	resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		writeProblem(w, http.StatusServiceUnavailable, status.New(codes.Unavailable, "not serving"))
		return
	}
	if s.opts.events != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyCheckTimeout)
		defer cancel()
		if err := s.opts.events.Check(ctx); err != nil {
			writeProblem(w, http.StatusServiceUnavailable, status.New(codes.Unavailable, "the event log is unavailable"))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"READY"}`+"\n")
}

// webhookHandler routes the webhook listener: the receiver, and nothing
// else, so that what faces Upvest's side of the network exposes no API.
func (s *Server) webhookHandler() http.Handler {
	mux := http.NewServeMux()
	if s.webhook != nil {
		mux.Handle(http.MethodPost+" "+WebhookPath, s.webhook)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, status.New(codes.NotFound, "no such route"))
	})
	return mux
}

// limitBody caps a request body at limit bytes (413 when a Content-Length
// says more; a body that turns out larger is caught by problemErrorHandler;
// limit 0: no cap) and bounds the time to receive it. Once the body is in,
// the deadline is lifted: it would otherwise end a long-running call (the
// server's background read sees it as the client gone). A body that stalls
// keeps it, and its connection is closed after the answer, so that nothing
// waits on it for ever, not even the server discarding the rest.
func limitBody(next http.Handler, limit int64, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limit > 0 && r.ContentLength > limit {
			w.Header().Set("Connection", "close")
			writeProblem(w, http.StatusRequestEntityTooLarge, gatewayStatus(codes.InvalidArgument, ReasonBodyTooLarge,
				"the request body is larger than "+strconv.FormatInt(limit, 10)+" bytes"))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if timeout > 0 {
				_ = rc.SetReadDeadline(time.Now().Add(timeout))
			}
			body := r.Body
			if limit > 0 {
				body = http.MaxBytesReader(w, r.Body, limit)
			}
			lb := &limitedBody{
				ReadCloser: body,
				received:   func() { _ = rc.SetReadDeadline(time.Time{}) },
				failed:     func() { w.Header().Set("Connection", "close") },
			}
			r = r.WithContext(context.WithValue(r.Context(), limitedBodyKey{}, lb))
			r.Body = lb
		}
		next.ServeHTTP(w, r)
	})
}

type limitedBodyKey struct{}

// limitedBody remembers whether the cap was hit, for the error handler.
type limitedBody struct {
	io.ReadCloser
	tooLarge atomic.Bool
	// decodeErr is why the body could not be decoded (strictJSON), with
	// the details the generated handlers drop.
	decodeErr atomic.Pointer[status.Status]
	ended     atomic.Bool
	received  func() // the whole body is in
	failed    func() // the body could not be read
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ended.CompareAndSwap(false, true) {
		if err == io.EOF {
			b.received()
		} else {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				b.tooLarge.Store(true)
			}
			b.failed()
		}
	}
	return n, err
}

// decodeError is why the body of ctx's request could not be decoded, if it
// could not.
func decodeError(ctx context.Context) *status.Status {
	if lb, ok := ctx.Value(limitedBodyKey{}).(*limitedBody); ok {
		return lb.decodeErr.Load()
	}
	return nil
}

// bodyTooLarge reports whether the request of ctx hit the body cap.
func bodyTooLarge(ctx context.Context) bool {
	lb, ok := ctx.Value(limitedBodyKey{}).(*limitedBody)
	return ok && lb.tooLarge.Load()
}
