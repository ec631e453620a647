package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
)

// callerHeader is response header metadata in which the stub services
// report the identity the guard put into their context.
const callerHeader = "x-test-caller"

// Withdrawals the stub PaymentsService knows, by id, with their account group.
var withdrawals = map[string]string{"w-in-a": groupA, "w-in-b": groupB}

// cashBalances is a stub CashBalanceService.
type cashBalances struct {
	gatewayv1.UnimplementedCashBalanceServiceServer
}

func (cashBalances) GetCashBalance(ctx context.Context, req *gatewayv1.GetCashBalanceRequest) (*gatewayv1.GetCashBalanceResponse, error) {
	reportCaller(ctx)
	return &gatewayv1.GetCashBalanceResponse{CashBalance: &gatewayv1.CashBalance{AccountGroupId: req.GetAccountGroupId(), Currency: "EUR", Balance: "1.00"}}, nil
}

func (cashBalances) WatchCashBalance(req *gatewayv1.WatchCashBalanceRequest, ss grpc.ServerStreamingServer[gatewayv1.WatchCashBalanceResponse]) error {
	reportCaller(ss.Context())
	if err := ss.Send(&gatewayv1.WatchCashBalanceResponse{ResumeToken: "t0"}); err != nil {
		return err
	}
	<-ss.Context().Done()
	return nil
}

// payments is a stub PaymentsService.
type payments struct {
	gatewayv1.UnimplementedPaymentsServiceServer
}

func (payments) CreateWithdrawal(ctx context.Context, req *gatewayv1.CreateWithdrawalRequest) (*gatewayv1.CreateWithdrawalResponse, error) {
	reportCaller(ctx)
	return &gatewayv1.CreateWithdrawalResponse{Withdrawal: &gatewayv1.Withdrawal{Id: "w-new", AccountGroupId: req.GetAccountGroupId()}}, nil
}

// GetWithdrawal is what the real service does with a request naming only a
// resource id: read it, then check its account group before returning it.
func (payments) GetWithdrawal(ctx context.Context, req *gatewayv1.GetWithdrawalRequest) (*gatewayv1.GetWithdrawalResponse, error) {
	reportCaller(ctx)
	group, ok := withdrawals[req.GetWithdrawalId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such withdrawal")
	}
	if err := auth.CheckAccountGroup(ctx, group); err != nil {
		return nil, err
	}
	return &gatewayv1.GetWithdrawalResponse{Withdrawal: &gatewayv1.Withdrawal{Id: req.GetWithdrawalId(), AccountGroupId: group}}, nil
}

func (payments) WatchPaymentEvents(req *gatewayv1.WatchPaymentEventsRequest, ss grpc.ServerStreamingServer[gatewayv1.WatchPaymentEventsResponse]) error {
	reportCaller(ss.Context())
	if err := ss.Send(&gatewayv1.WatchPaymentEventsResponse{ResumeToken: "t0"}); err != nil {
		return err
	}
	<-ss.Context().Done()
	return nil
}

func reportCaller(ctx context.Context) {
	c, ok := auth.CallerFromContext(ctx)
	if !ok {
		c.Identity = "(none)"
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(callerHeader, c.Identity))
}

// setup is how a harness is configured.
type setup struct {
	policy    string // policy file content; "" for none
	mutualTLS bool   // client certificates required on gRPC
	jwt       bool   // bearer tokens accepted
	options   []auth.Option
}

// harness is a real gRPC server on loopback with real TLS, the guard's
// interceptors, stub services, and a REST face (grpc-gateway over an
// in-memory connection, served over HTTPS), as the gateway wires them.
type harness struct {
	ca, foreign *tlstest.CA
	leaves      map[string]tlstest.Leaf // client certificates by name
	policyFile  string
	logs        *logtest.Buffer
	guard       *auth.Guard
	grpcAddr    string
	restURL     string
	memLis      *bufconn.Listener
	signer      *tokenSigner
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		ca:      tlstest.NewCA(t, "gateway test CA"),
		foreign: tlstest.NewCA(t, "foreign CA"),
		leaves:  map[string]tlstest.Leaf{},
		logs:    &logtest.Buffer{},
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.leaves["payout-worker"] = h.ca.Client(t, "payout-worker", payoutWorker)
	h.leaves["balance-dashboard"] = h.ca.Client(t, "balance-dashboard")
	h.leaves["payments-auditor"] = h.ca.Client(t, "payments-auditor")
	h.leaves["noisy"] = h.ca.Client(t, "noisy")
	h.leaves["quiet"] = h.ca.Client(t, "quiet")
	h.leaves["stranger"] = h.ca.Client(t, "stranger")
	h.leaves["outsider"] = h.foreign.Client(t, "payout-worker", payoutWorker)

	certFile, keyFile := h.ca.Server(t, "gateway").Write(t, dir, "server")
	tlsOpts := []tlsconfig.Option{tlsconfig.WithLogger(log)}
	if s.mutualTLS {
		caFile := filepath.Join(dir, "clients-ca.pem")
		tlstest.WriteFile(t, caFile, h.ca.PEM)
		tlsOpts = append(tlsOpts, tlsconfig.WithClientCAFile(caFile))
	}
	tlsServer, err := tlsconfig.New(certFile, keyFile, tlsOpts...)
	if err != nil {
		t.Fatal(err)
	}

	opts := []auth.Option{auth.WithLogger(log)}
	if s.policy != "" {
		h.policyFile = filepath.Join(dir, "policy.yaml")
		tlstest.WriteFile(t, h.policyFile, []byte(s.policy))
		pf, err := auth.LoadPolicyFile(h.policyFile, gatewayMethods, auth.WithCheckInterval(0), auth.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, auth.WithPolicyFile(pf))
	}
	if s.jwt {
		h.signer = newTokenSigner(t)
		jwksFile := filepath.Join(dir, "jwks.json")
		tlstest.WriteFile(t, jwksFile, h.signer.jwks(t))
		keys, err := auth.JWKSFromFile(jwksFile, auth.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		v, err := auth.NewJWTVerifier(keys, testIssuer, testAudience)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, auth.WithJWT(v))
	}
	h.guard, err = auth.NewGuard(append(opts, s.options...)...)
	if err != nil {
		t.Fatal(err)
	}

	srv := grpc.NewServer(
		grpc.Creds(tlsServer.GRPCCredentials()),
		grpc.ChainUnaryInterceptor(h.guard.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(h.guard.StreamServerInterceptor()),
	)
	gatewayv1.RegisterCashBalanceServiceServer(srv, cashBalances{})
	gatewayv1.RegisterPaymentsServiceServer(srv, payments{})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.grpcAddr = lis.Addr().String()
	h.memLis = bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	go func() { _ = srv.Serve(h.memLis) }()
	t.Cleanup(srv.Stop)

	// The REST face: grpc-gateway over the in-memory connection.
	memConn := h.inMemoryConn(t)
	mux := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(auth.RESTHeaderMatcher(runtime.DefaultHeaderMatcher)),
		runtime.WithMetadata(h.guard.RESTMetadata),
	)
	if err := gatewayv1.RegisterCashBalanceServiceHandlerClient(context.Background(), mux, gatewayv1.NewCashBalanceServiceClient(memConn)); err != nil {
		t.Fatal(err)
	}
	if err := gatewayv1.RegisterPaymentsServiceHandlerClient(context.Background(), mux, gatewayv1.NewPaymentsServiceClient(memConn)); err != nil {
		t.Fatal(err)
	}
	// A second REST face without the header matcher, to show the second line
	// of defence against an injected identity.
	unguarded := runtime.NewServeMux(runtime.WithMetadata(h.guard.RESTMetadata))
	if err := gatewayv1.RegisterCashBalanceServiceHandlerClient(context.Background(), unguarded, gatewayv1.NewCashBalanceServiceClient(memConn)); err != nil {
		t.Fatal(err)
	}
	routes := http.NewServeMux()
	routes.Handle("/v1/", mux)
	routes.Handle("/unguarded/", http.StripPrefix("/unguarded", unguarded))
	routes.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		c, err := h.guard.AuthenticateHTTP(r)
		if err != nil {
			http.Error(w, status.Convert(err).Message(), http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(c.Identity + " " + string(c.Source)))
	})
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpServer := &http.Server{Handler: routes, TLSConfig: tlsServer.HTTP(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = httpServer.ServeTLS(httpLis, "", "") }()
	t.Cleanup(func() { httpServer.Close() })
	h.restURL = "https://" + httpLis.Addr().String()
	return h
}

func (h *harness) inMemoryConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///in-memory",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return h.memLis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// conn is a gRPC client over TLS presenting the named client certificate
// ("" for none).
func (h *harness) conn(t *testing.T, leaf string) *grpc.ClientConn {
	t.Helper()
	var certs []tls.Certificate
	if leaf != "" {
		certs = append(certs, h.leaves[leaf].TLS)
	}
	cfg := tlstest.ClientConfig(h.ca.Pool(), certs...)
	if leaf == "outsider" {
		// Sent whatever CAs the server asks for.
		cert := h.leaves[leaf].TLS
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// httpClient is an HTTPS client presenting the named client certificate
// ("" for none).
func (h *harness) httpClient(t *testing.T, leaf string) *http.Client {
	t.Helper()
	var certs []tls.Certificate
	if leaf != "" {
		certs = append(certs, h.leaves[leaf].TLS)
	}
	tr := &http.Transport{TLSClientConfig: tlstest.ClientConfig(h.ca.Pool(), certs...), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// replacePolicy writes a new policy file.
func (h *harness) replacePolicy(t *testing.T, policy string) {
	t.Helper()
	tlstest.WriteFile(t, h.policyFile, []byte(policy))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus checks an error's code, ErrorInfo reason and domain, and that
// its message contains each of contains.
func wantStatus(t *testing.T, err error, code codes.Code, reason string, contains ...string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if reason != "" {
		ei := errorInfo(st)
		if ei == nil || ei.GetReason() != reason || ei.GetDomain() != auth.ErrorDomain {
			t.Fatalf("ErrorInfo = %v, want reason %s in domain %s", ei, reason, auth.ErrorDomain)
		}
	}
	for _, c := range contains {
		if !strings.Contains(st.Message(), c) {
			t.Errorf("message %q does not contain %q", st.Message(), c)
		}
	}
	return st
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}

func retryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}

// Tokens.

const (
	testIssuer   = "https://idp.bank.example"
	testAudience = "upvest-gateway"
)

// tokenSigner holds the identity provider's keys: one of each accepted
// family, all published in the JWKS, and one that is not.
type tokenSigner struct {
	keys    map[string]crypto.Signer // by kid
	algs    map[string]jose.SignatureAlgorithm
	private map[string]any
}

func newTokenSigner(t testing.TB) *tokenSigner {
	t.Helper()
	s := &tokenSigner{keys: map[string]crypto.Signer{}, algs: map[string]jose.SignatureAlgorithm{}, private: map[string]any{}}
	add := func(kid string, alg jose.SignatureAlgorithm, k crypto.Signer) {
		s.keys[kid], s.algs[kid] = k, alg
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	add("rs", jose.RS256, rsaKey)
	for kid, c := range map[string]elliptic.Curve{"es256": elliptic.P256(), "es384": elliptic.P384(), "es512": elliptic.P521(), "unpublished": elliptic.P256()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		alg := map[string]jose.SignatureAlgorithm{"es256": jose.ES256, "es384": jose.ES384, "es512": jose.ES512, "unpublished": jose.ES256}[kid]
		add(kid, alg, k)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	add("ed", jose.EdDSA, edKey)
	return s
}

// jwks is the published key set (without "unpublished").
func (s *tokenSigner) jwks(t testing.TB) []byte { return s.jwksOf(t, false) }

// jwksRotated is the key set once "unpublished" is published too.
func (s *tokenSigner) jwksRotated(t testing.TB) []byte { return s.jwksOf(t, true) }

func (s *tokenSigner) jwksOf(t testing.TB, all bool) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range s.keys {
		if kid == "unpublished" && !all {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: string(s.algs[kid]), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are a token's claims; zero fields are left out.
type claims struct {
	Subject   string
	Issuer    string
	Audience  []string
	Expiry    time.Time
	NoExpiry  bool // leave exp out
	NotBefore time.Time
	Extra     map[string]any
}

func validClaims(sub string) claims {
	return claims{Subject: sub, Issuer: testIssuer, Audience: []string{testAudience}, Expiry: time.Now().Add(time.Hour)}
}

// sign makes a compact JWT signed by the key kid.
func (s *tokenSigner) sign(t testing.TB, kid string, c claims) string {
	t.Helper()
	key, ok := s.keys[kid]
	if !ok {
		t.Fatalf("no key %q", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.algs[kid], Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	std := jwt.Claims{Subject: c.Subject, Issuer: c.Issuer, Audience: c.Audience, IssuedAt: jwt.NewNumericDate(time.Now())}
	if !c.NoExpiry {
		std.Expiry = jwt.NewNumericDate(c.Expiry)
	}
	if !c.NotBefore.IsZero() {
		std.NotBefore = jwt.NewNumericDate(c.NotBefore)
	}
	b := jwt.Signed(signer).Claims(std)
	if c.Extra != nil {
		b = b.Claims(c.Extra)
	}
	tok, err := b.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// grpcHeader is grpc.Header, named for the tables above.
func grpcHeader(md *metadata.MD) grpc.CallOption { return grpc.Header(md) }
