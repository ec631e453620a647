package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/vanguard"
	"github.com/rs/cors"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
)

// What browsers need of the HTTP listener: CORS, so that a page of another
// origin can call the REST face and read its streams; and gRPC-Web, so that
// a browser gRPC client can call the gRPC services.

// CORS says which browser origins may call the HTTP listener. The zero
// value allows none (no CORS headers at all).
type CORS struct {
	// AllowedOrigins are origins such as "https://dashboard.example.com",
	// or "*" for any.
	AllowedOrigins []string
	// AllowCredentials lets pages send cookies and TLS client certificates
	// (credentials: "include"). Off by default: bearer tokens need no
	// credentials mode. Not with "*".
	AllowCredentials bool
}

// WithCORS answers browsers of c's origins (preflights included) on the
// HTTP listener: the REST face, its streams, gRPC-Web and /openapi.json.
func WithCORS(c CORS) Option {
	return optionFunc(func(o *options) { o.cors = c })
}

// Headers a page may send, and read, across origins.
var (
	corsRequestHeaders = []string{"Accept", "Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID",
		"X-Grpc-Web", "X-User-Agent", "Grpc-Timeout"}
	corsExposedHeaders = []string{"Idempotency-Key", "Upvest-Request-Id", "Retry-After",
		"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"}
)

// withCORS wraps h with c's CORS policy, or returns h without one.
func withCORS(c CORS, h http.Handler) (http.Handler, error) {
	if len(c.AllowedOrigins) == 0 {
		return h, nil
	}
	if c.AllowCredentials && slices.Contains(c.AllowedOrigins, "*") {
		return nil, errors.New("server: CORS credentials cannot be allowed to any origin (*): name the origins")
	}
	for _, o := range c.AllowedOrigins {
		if o != "*" && (!strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") || strings.HasSuffix(o, "/")) {
			return nil, errors.New("server: CORS origin " + o + " is not scheme://host[:port]")
		}
	}
	return cors.New(cors.Options{
		AllowedOrigins:   c.AllowedOrigins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodDelete},
		AllowedHeaders:   corsRequestHeaders,
		ExposedHeaders:   corsExposedHeaders,
		AllowCredentials: c.AllowCredentials,
		MaxAge:           600,
	}).Handler(h), nil
}

// grpcWebPrefix starts the content type of every gRPC-Web request.
const grpcWebPrefix = "application/grpc-web"

// grpcWebHandler serves the API's gRPC services as gRPC-Web: vanguard
// transcodes each call to gRPC and hands it to the gateway's gRPC server
// (its ServeHTTP), so the call passes the same interceptors as one on the
// gRPC listener. It takes gRPC-Web requests only; a caller that can speak
// gRPC uses the gRPC listener.
func (s *Server) grpcWebHandler() (http.Handler, []string, error) {
	var services []*vanguard.Service
	var names []string
	for name := range s.grpc.GetServiceInfo() {
		// The API's services only: the operators' services and reflection
		// stay on the gRPC listener.
		if strings.HasPrefix(name, "upvest.gateway.v1.") {
			services = append(services, vanguard.NewService(name, s.grpc))
			names = append(names, name)
		}
	}
	slices.Sort(names)
	t, err := vanguard.NewTranscoder(services,
		// gRPC-Web's JSON codec as the REST face's JSON: Upvest's field
		// names, and an unknown field refused rather than dropped.
		vanguard.WithCodec(func(res vanguard.TypeResolver) vanguard.Codec {
			return &vanguard.JSONCodec{
				MarshalOptions:   protojson.MarshalOptions{Resolver: res, EmitUnpopulated: true, UseProtoNames: true},
				UnmarshalOptions: protojson.UnmarshalOptions{Resolver: res},
			}
		}),
		vanguard.WithDefaultServiceOptions(
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			vanguard.WithMaxMessageBufferBytes(uint32(max(s.opts.maxBodyBytes, 1<<16))),
		))
	if err != nil {
		return nil, nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Content-Type"), grpcWebPrefix) {
			writeProblem(w, http.StatusUnsupportedMediaType, gatewayStatus(codes.Unimplemented, "GRPC_WEB_ONLY",
				"this path takes gRPC-Web ("+grpcWebPrefix+"…); gRPC callers use the gRPC listener"))
			return
		}
		t.ServeHTTP(w, r)
	})
	return h, names, nil
}
