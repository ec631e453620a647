// Package server assembles the gateway: the gRPC server with the four
// services, health and reflection, and the HTTP server with the REST face
// (grpc-gateway, routed by the OpenAPI description: contract.go; strict
// input: strict.go), gRPC-Web and CORS for browsers (browser.go), the
// OpenAPI description and /healthz.
//
// The REST face is a grpc-gateway mux over a client connection to the
// gateway's own gRPC server, not grpc-gateway's in-process handler mode:
// that mode cannot stream, and skips the interceptors. Every REST call
// passes the same interceptors (and stats handlers) as a gRPC call: a unary
// call runs them in the REST request's goroutine, without a gRPC transport
// in between (inprocess.go); a stream goes over an in-memory (bufconn)
// listener.
//
// WithEvents wires in the event log (internal/events): the webhook receiver
// at POST /webhooks/upvest, the Watch RPCs, and a readiness check at
// /readyz. The REST face of the Watch RPCs streams newline-delimited JSON or,
// for Accept: text/event-stream, Server-Sent Events (stream.go).
//
// Operations: the admin listener (admin.go) serves the metrics
// (WithMetrics), the profiler, /healthz and /readyz; WithTracing traces the
// calls (observe.go); Serve's shutdown turns not ready first, serves on for
// the shutdown delay, then drains, ending streams with their resume token
// (lifecycle.go).
package server
