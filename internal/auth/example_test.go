package auth_test

import (
	"context"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
)

// A gateway with mutual TLS, bearer tokens for callers behind a mesh, a
// policy file, and the REST face passing the same interceptors.
func Example() {
	// Every method the policy may name.
	methods := auth.MethodsOf(
		&gatewayv1.VirtualCashService_ServiceDesc,
		&gatewayv1.TopupService_ServiceDesc,
		&gatewayv1.PaymentsService_ServiceDesc,
		&gatewayv1.CashBalanceService_ServiceDesc,
	)
	policy, err := auth.LoadPolicyFile(os.Getenv("GATEWAY_POLICY_FILE"), methods)
	if err != nil {
		log.Fatal(err) // "auth: policy file ...: policy line 7: callers[1]...: ..."
	}
	keys, err := auth.JWKSFromURL(os.Getenv("GATEWAY_JWT_JWKS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Refresh(context.Background()); err != nil {
		log.Fatal(err) // a wrong URL stops start-up
	}
	tokens, err := auth.NewJWTVerifier(keys, os.Getenv("GATEWAY_JWT_ISSUER"), os.Getenv("GATEWAY_JWT_AUDIENCE"),
		auth.WithIdentityClaim("sub"))
	if err != nil {
		log.Fatal(err)
	}
	guard, err := auth.NewGuard(auth.WithPolicyFile(policy), auth.WithJWT(tokens))
	if err != nil {
		log.Fatal(err)
	}

	tlsServer, err := tlsconfig.New(os.Getenv("GATEWAY_TLS_CERT_FILE"), os.Getenv("GATEWAY_TLS_KEY_FILE"),
		tlsconfig.WithClientCAFile(os.Getenv("GATEWAY_TLS_CLIENT_CA_FILE")))
	if err != nil {
		log.Fatal(err)
	}
	grpcServer := grpc.NewServer(
		grpc.Creds(tlsServer.GRPCCredentials()), // TLS, except on the in-memory connection
		grpc.ChainUnaryInterceptor( /* logging, recovery, */ guard.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor( /* logging, recovery, */ guard.StreamServerInterceptor()),
	)
	// gatewayv1.RegisterPaymentsServiceServer(grpcServer, ...) and the others;
	// handlers of Get/Cancel call auth.CheckAccountGroup(ctx, resource.AccountGroupId).

	// The REST face: grpc-gateway over an in-memory connection to grpcServer.
	mem := bufconn.Listen(1 << 20)
	conn, err := grpc.NewClient("passthrough:///in-memory",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return mem.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	rest := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(auth.RESTHeaderMatcher(runtime.DefaultHeaderMatcher)),
		runtime.WithMetadata(guard.RESTMetadata),
	)
	_ = gatewayv1.RegisterPaymentsServiceHandlerClient(context.Background(), rest, gatewayv1.NewPaymentsServiceClient(conn))
	httpServer := &http.Server{Handler: rest, TLSConfig: tlsServer.HTTP()}

	grpcLis, _ := net.Listen("tcp", "127.0.0.1:9090")
	httpLis, _ := net.Listen("tcp", "127.0.0.1:8080")
	go func() { _ = grpcServer.Serve(grpcLis) }()
	go func() { _ = grpcServer.Serve(mem) }()
	_ = httpServer.ServeTLS(httpLis, "", "")
}

// A development gateway on loopback: no credentials, everything allowed
// (or what a policy grants the identity "anonymous").
func ExampleWithUnauthenticated() {
	guard, err := auth.NewGuard(auth.WithUnauthenticated())
	if err != nil {
		log.Fatal(err)
	}
	_ = grpc.NewServer(
		grpc.ChainUnaryInterceptor(guard.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(guard.StreamServerInterceptor()),
	)
}

// A service handler for a request that names a resource only by its id.
func ExampleCheckAccountGroup() {
	getWithdrawal := func(ctx context.Context, req *gatewayv1.GetWithdrawalRequest) (*gatewayv1.GetWithdrawalResponse, error) {
		w := &gatewayv1.Withdrawal{Id: req.GetWithdrawalId()} // read from upstream
		if err := auth.CheckAccountGroup(ctx, w.GetAccountGroupId()); err != nil {
			return nil, err // PERMISSION_DENIED, ACCOUNT_GROUP_NOT_ALLOWED
		}
		return &gatewayv1.GetWithdrawalResponse{Withdrawal: w}, nil
	}
	_ = getWithdrawal
}
