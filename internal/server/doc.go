// Package server assembles the gateway: the gRPC server with the four
// services, health and reflection, and the HTTP server with the REST face
// (grpc-gateway, routed by the OpenAPI description: contract.go; strict
// input: strict.go), gRPC-Web and CORS for browsers (browser.go), the
// OpenAPI description and /healthz.
//
// The REST face is a grpc-gateway mux over a client connection to the
// gateway's own gRPC server through an in-memory (bufconn) listener, not
// grpc-gateway's in-process handler mode: that mode cannot stream, and going
// through a connection makes every REST call pass the same interceptors as a
// gRPC call.
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
