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

	"github.com/upvest-gateway/gateway/gen/openapiv2"
)

// HTTP server limits. There is no WriteTimeout (nor ReadTimeout, which
// would also end a long answer): streams stay open for as long as they run.
// The time to send a body is bounded per request by limitBody instead.
const (
	readHeaderTimeout = 10 * time.Second
	bodyReadTimeout   = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	readyCheckTimeout = 2 * time.Second
)

// httpHandler routes the HTTP listener: the REST face under /v1/ (its
// streams in stream.go), the OpenAPI description, /healthz, /readyz, and the
// routes added with WithHTTPHandler (and WithEvents).
func (s *Server) httpHandler(rest http.Handler) (h http.Handler, err error) {
	mux := http.NewServeMux()
	defer func() {
		// ServeMux panics on a malformed or conflicting pattern.
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("server: HTTP route: %v", p)
		}
	}()
	mux.Handle("/v1/", limitBody(rest, s.opts.maxBodyBytes))
	for _, rt := range watchRoutes {
		mux.Handle("GET "+rt.path, s.watchHandler(rt))
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
		writeProblem(w, http.StatusNotFound, status.New(codes.NotFound, "no such route"))
	})
	return mux, nil
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openapiv2.Gateway)))
	_, _ = w.Write(openapiv2.Gateway)
}

// healthz answers 200 while the gRPC health service says SERVING for the
// server as a whole, 503 otherwise (e.g. while draining).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		writeProblem(w, http.StatusServiceUnavailable, status.New(codes.Unavailable, "not serving"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"SERVING"}`+"\n")
}

// readyz is healthz plus the dependencies a replica needs to take traffic:
// with WithEvents, the event log (a webhook could not be stored without it).
// healthz stays a liveness check: restarting the gateway does not bring
// NATS back.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
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

// limitBody caps a request body at limit bytes (413 when a Content-Length
// says more; a body that turns out larger is caught by problemErrorHandler)
// and bounds the time to receive it.
func limitBody(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeProblem(w, http.StatusRequestEntityTooLarge, status.New(codes.InvalidArgument,
				"the request body is larger than "+strconv.FormatInt(limit, 10)+" bytes"))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
			lb := &limitedBody{
				ReadCloser: http.MaxBytesReader(w, r.Body, limit),
				// Once the body is in, lift the deadline again: it would
				// otherwise end a long-running call.
				done: func() { _ = rc.SetReadDeadline(time.Time{}) },
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
	ended    atomic.Bool
	done     func()
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			b.tooLarge.Store(true)
		}
		if b.ended.CompareAndSwap(false, true) {
			b.done()
		}
	}
	return n, err
}

// bodyTooLarge reports whether the request of ctx hit the body cap.
func bodyTooLarge(ctx context.Context) bool {
	lb, ok := ctx.Value(limitedBodyKey{}).(*limitedBody)
	return ok && lb.tooLarge.Load()
}
