package server

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/service"
)

// bufconnSize is the in-memory connection's buffer: large enough for a full
// 1000-item list page in flight.
const bufconnSize = 1 << 20

// Header names of the REST face.
const (
	HeaderIdempotencyKey  = "Idempotency-Key"
	HeaderUpvestRequestID = "Upvest-Request-Id"
)

// dialInMemory connects to the gateway's own gRPC server over lis.
func dialInMemory(lis *bufconn.Listener) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///gateway.in-memory",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
}

// newRESTMux is the REST face: grpc-gateway over conn (inProcessConn), with the
// Idempotency-Key header in and out, problem+json errors, and JSON that
// refuses unknown fields and anything after the body (a typo in a money
// request must not be ignored).
func newRESTMux(conn grpc.ClientConnInterface, guard *auth.Guard, errorHandler runtime.ErrorHandlerFunc) (*runtime.ServeMux, error) {
	opts := []runtime.ServeMuxOption{
		// No header can pose as the identity the REST face forwards.
		runtime.WithIncomingHeaderMatcher(auth.RESTHeaderMatcher(incomingHeader)),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(problemRoutingErrorHandler),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &strictJSON{runtime.JSONPb{
				// Upvest's own field names (account_group_id, cash_amount), so the
				// REST face reads like the API it fronts; either spelling is accepted.
				MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
			}},
		}),
	}
	if guard != nil {
		opts = append(opts, runtime.WithMetadata(guard.RESTMetadata))
	}
	mux := runtime.NewServeMux(opts...)
	ctx := context.Background() // used by the generated code only to register
	regs := []struct {
		name string
		err  error
	}{
		{"VirtualCashService", gatewayv1.RegisterVirtualCashServiceHandlerClient(ctx, mux, gatewayv1.NewVirtualCashServiceClient(conn))},
		{"TopupService", gatewayv1.RegisterTopupServiceHandlerClient(ctx, mux, gatewayv1.NewTopupServiceClient(conn))},
		{"PaymentsService", gatewayv1.RegisterPaymentsServiceHandlerClient(ctx, mux, gatewayv1.NewPaymentsServiceClient(conn))},
		{"CashBalanceService", gatewayv1.RegisterCashBalanceServiceHandlerClient(ctx, mux, gatewayv1.NewCashBalanceServiceClient(conn))},
	}
	for _, r := range regs {
		if r.err != nil {
			return nil, fmt.Errorf("server: registering the REST face of %s: %w", r.name, r.err)
		}
	}
	return mux, nil
}

// incomingHeader passes Idempotency-Key to the services as the metadata
// they read, the W3C trace context as it is (so a REST caller's trace
// continues through the gateway to Upvest), and everything else as
// grpc-gateway does by default.
func incomingHeader(key string) (string, bool) {
	switch {
	case strings.EqualFold(key, HeaderIdempotencyKey):
		return service.IdempotencyKeyMetadata, true
	case strings.EqualFold(key, "traceparent"), strings.EqualFold(key, "tracestate"):
		return strings.ToLower(key), true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// outgoingHeader exposes the two ids a caller needs from the response header
// metadata, and nothing else of it.
func outgoingHeader(key string) (string, bool) {
	switch strings.ToLower(key) {
	case service.IdempotencyKeyMetadata:
		return HeaderIdempotencyKey, true
	case service.UpvestRequestIDMetadata:
		return HeaderUpvestRequestID, true
	}
	return "", false
}
