package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

// BenchmarkUnaryInterceptor is the guard's cost per unary call with a
// client certificate: identity, policy lookup, token bucket, account group.
func BenchmarkUnaryInterceptor(b *testing.B) {
	p, err := auth.ParsePolicy([]byte(`
callers:
  - identity: "spiffe://bank.example/ns/payouts/sa/payout-worker"
    methods: ["upvest.gateway.v1.PaymentsService/*"]
    account_groups: ["2596db3b-0d03-4651-9eda-970910479dfb"]
    limits: {calls_per_second: 1000000000, burst: 1000000000}
`), gatewayMethods)
	if err != nil {
		b.Fatal(err)
	}
	g, err := auth.NewGuard(auth.WithPolicy(p))
	if err != nil {
		b.Fatal(err)
	}
	leaf := tlstest.NewCA(b, "bench CA").Client(b, "payout-worker", payoutWorker)
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf.Cert}}}},
	})
	info := &grpc.UnaryServerInfo{FullMethod: gatewayv1.PaymentsService_CreateWithdrawal_FullMethodName}
	req := &gatewayv1.CreateWithdrawalRequest{AccountGroupId: groupA}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	intercept := g.UnaryServerInterceptor()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := intercept(ctx, req, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyES256 is the cost of a bearer token per call: a caller's
// token remembered once verified (every call after its first), and
// verified every time.
func BenchmarkVerifyES256(b *testing.B) {
	s := newTokenSigner(b)
	keys := jwksFileTB(b, s.jwks(b))
	tok := s.sign(b, "es256", validClaims("balance-dashboard"))
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		cache int
	}{{"remembered", auth.DefaultTokenCacheSize}, {"verified", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			v, err := auth.NewJWTVerifier(keys, testIssuer, testAudience, auth.WithTokenCache(bc.cache))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
