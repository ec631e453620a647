package server

import (
	"net/http"
	"net/http/pprof"

	"google.golang.org/grpc/codes"
)

// adminHandler routes the admin listener (Config.AdminListener): the
// metrics (WithMetrics) at /metrics, the Go profiler under /debug/pprof/,
// and /healthz and /readyz as on the HTTP listener. Nothing here passes the
// caller guard, and profiles show the process's insides: the admin listener
// must not face an untrusted network (loopback, or a pod port that only
// the monitoring may reach).
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	if s.opts.metrics != nil {
		mux.Handle("GET /metrics", s.opts.metrics.Handler())
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index) // the runtime's profiles by name: heap, goroutine, allocs, ...
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Not /debug/pprof/cmdline: the command line may hold a secret given
	// as a flag.
	mux.HandleFunc("/debug/pprof/cmdline", notFound)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("/", notFound)
	return mux
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, http.StatusNotFound, gatewayStatus(codes.NotFound, ReasonNoRoute, "no such route"))
}

// AdminAddr is the address the admin listener is bound to, "" without one.
func (s *Server) AdminAddr() string {
	if s.adminLis == nil {
		return ""
	}
	return s.adminLis.Addr().String()
}
