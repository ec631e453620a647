package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
	"github.com/upvest-gateway/gateway/internal/tlsconfig/tlstest"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

const payoutWorker = "spiffe://bank.example/ns/payouts/sa/payout-worker"

// securePolicy: the payout worker may move money in one account group; the
// dashboard may only read balances.
func securePolicy(ag string) string {
	return `callers:
  - identity: "` + payoutWorker + `"
    methods: ["upvest.gateway.v1.PaymentsService/*", "upvest.gateway.v1.TopupService/*", "upvest.gateway.v1.VirtualCashService/*", "upvest.gateway.v1.CashBalanceService/GetCashBalance"]
    account_groups: ["` + ag + `"]
  - identity: "balance-dashboard"
    methods: ["upvest.gateway.v1.CashBalanceService/*"]
`
}

// secureGateway is a gateway with mutual TLS and a policy, its CA, and the
// account group the payout worker may use.
type secureGateway struct {
	*servertest.Gateway
	ca      *tlstest.CA
	ag      string
	certDir string
}

// startSecure starts a gateway over TLS with the payout worker's and the
// dashboard's policy: with mutual TLS, or (mtls false) server TLS only, as
// behind a mesh whose callers bring bearer tokens.
func startSecure(t *testing.T, mtls bool, extra ...auth.Option) *secureGateway {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "callers")
	certFile, keyFile := ca.Server(t, "gateway").Write(t, dir, "server")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	var tlsOpts []tlsconfig.Option
	if mtls {
		tlsOpts = append(tlsOpts, tlsconfig.WithClientCAFile(caFile))
	}
	srvTLS, err := tlsconfig.New(certFile, keyFile, tlsOpts...)
	if err != nil {
		t.Fatal(err)
	}
	ag := uuid.NewString()
	policyFile := filepath.Join(dir, "policy.yaml")
	tlstest.WriteFile(t, policyFile, []byte(securePolicy(ag)))
	policy, err := auth.LoadPolicyFile(policyFile, auth.MethodsOf(&gatewayv1.VirtualCashService_ServiceDesc,
		&gatewayv1.TopupService_ServiceDesc, &gatewayv1.PaymentsService_ServiceDesc, &gatewayv1.CashBalanceService_ServiceDesc))
	if err != nil {
		t.Fatal(err)
	}
	guard, err := auth.NewGuard(append([]auth.Option{auth.WithPolicyFile(policy)}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	worker := ca.Client(t, "", payoutWorker)
	g := servertest.Start(t, servertest.WithTLS(srvTLS, tlstest.ClientConfig(ca.Pool(), worker.TLS)),
		servertest.WithServerOptions(server.WithGuard(guard)))
	return &secureGateway{Gateway: g, ca: ca, ag: ag, certDir: dir}
}

// client is a gRPC connection presenting cert (none: nil).
func (g *secureGateway) client(t *testing.T, cert *tls.Certificate, roots *tlstest.CA) *grpc.ClientConn {
	t.Helper()
	var certs []tls.Certificate
	if cert != nil {
		certs = append(certs, *cert)
	}
	conn, err := grpc.NewClient("passthrough:///"+g.Server.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tlstest.ClientConfig(roots.Pool(), certs...))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// restClient is an HTTPS client presenting cert (none: nil).
func (g *secureGateway) restClient(cert *tls.Certificate) *http.Client {
	var certs []tls.Certificate
	if cert != nil {
		certs = append(certs, *cert)
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tlstest.ClientConfig(g.ca.Pool(), certs...)}}
}

func (g *secureGateway) rest(t *testing.T, c *http.Client, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, g.BaseURL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, res.Body)
	return res.StatusCode, b.String()
}

func reasonOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// TestMutualTLS: only callers with a certificate of the configured CA get
// in, on gRPC and REST alike.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	g := startSecure(t, true)
	ctx := ctxT(t)
	req := &gatewayv1.GetCashBalanceRequest{AccountGroupId: g.ag}

	if _, err := gatewayv1.NewCashBalanceServiceClient(g.client(t, nil, g.ca)).GetCashBalance(ctx, req); err == nil {
		t.Error("gRPC without a client certificate: accepted")
	}
	foreign := tlstest.NewCA(t, "someone else")
	stranger := foreign.Client(t, "balance-dashboard")
	if _, err := gatewayv1.NewCashBalanceServiceClient(g.client(t, &stranger.TLS, g.ca)).GetCashBalance(ctx, req); err == nil {
		t.Error("gRPC with another CA's certificate: accepted")
	}
	if code, body := g.rest(t, g.restClient(nil), http.MethodGet, "/v1/account_groups/"+g.ag+"/payments/cash_balance", ""); code != http.StatusUnauthorized {
		t.Errorf("REST without a client certificate: %d %s, want 401", code, body)
	}
	// Sent whatever CAs the server names, as a client trying its luck would.
	pushy := tlstest.ClientConfig(g.ca.Pool())
	pushy.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger.TLS, nil }
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: pushy}}).Get(g.BaseURL + "/healthz"); err == nil {
		t.Error("HTTPS with another CA's certificate: accepted")
	}
	// Probes need no certificate.
	if res, err := g.restClient(nil).Get(g.BaseURL + "/healthz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("healthz without a certificate: %v %v", res, err)
	}
	dashboard := g.ca.Client(t, "balance-dashboard")
	if _, err := gatewayv1.NewCashBalanceServiceClient(g.client(t, &dashboard.TLS, g.ca)).GetCashBalance(ctx, req); err != nil {
		t.Errorf("the dashboard's balance read: %v", err)
	}
}

// TestPolicy: an identity allowed only CashBalanceService cannot create a
// withdrawal over gRPC or REST; the account-group restriction holds for
// creates, gets, cancels and watches.
func TestPolicy(t *testing.T) {
	t.Parallel()
	g := startSecure(t, true)
	ctx := ctxT(t)
	dashboard := g.ca.Client(t, "balance-dashboard")
	withdrawal := &gatewayv1.CreateWithdrawalRequest{RequestId: uuid.NewString(), ReferenceAccountId: uuid.NewString(), AccountGroupId: g.ag, UserId: uuid.NewString(), Amount: "1.00"}
	_, err := gatewayv1.NewPaymentsServiceClient(g.client(t, &dashboard.TLS, g.ca)).CreateWithdrawal(ctx, withdrawal)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "PaymentsService/CreateWithdrawal") {
		t.Errorf("dashboard CreateWithdrawal over gRPC: %v, want PermissionDenied naming the method", err)
	}
	body, _ := json.Marshal(map[string]string{"request_id": uuid.NewString(), "reference_account_id": uuid.NewString(), "account_group_id": g.ag, "user_id": uuid.NewString(), "amount": "1.00"})
	if code, resp := g.rest(t, g.restClient(&dashboard.TLS), http.MethodPost, "/v1/payments/withdrawals", string(body)); code != http.StatusForbidden || !strings.Contains(resp, "METHOD_NOT_ALLOWED") {
		t.Errorf("dashboard CreateWithdrawal over REST: %d %s, want 403", code, resp)
	}
	if n := len(g.Sim.Requests()); n != 0 {
		for _, r := range g.Sim.Requests() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/withdrawals") {
				t.Fatal("a refused withdrawal reached Upvest")
			}
		}
	}

	// The payout worker, held to g.ag.
	topups := g.Topups()
	mine, err := topups.CreateTopup(ctx, &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: g.ag, CashAmount: "5.00", Currency: "EUR"})
	if err != nil {
		t.Fatalf("create in its own account group: %v", err)
	}
	other := uuid.NewString()
	_, err = topups.CreateTopup(ctx, &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: other, CashAmount: "5.00", Currency: "EUR"})
	if status.Code(err) != codes.PermissionDenied || reasonOf(err) != "ACCOUNT_GROUP_NOT_ALLOWED" {
		t.Errorf("create in another account group: %v", err)
	}
	// A top-up of another account group, made at Upvest directly.
	theirs, err := g.Upstream.CreateTopup(ctx, upstream.CreateTopupRequest{AccountGroupID: other, CashAmount: "5.00", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topups.GetTopup(ctx, &gatewayv1.GetTopupRequest{TopupId: theirs.ID}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("get of another account group's top-up: %v", err)
	}
	if _, err := topups.GetTopup(ctx, &gatewayv1.GetTopupRequest{TopupId: mine.GetTopup().GetId()}); err != nil {
		t.Errorf("get of its own top-up: %v", err)
	}
	if _, err := topups.CancelTopup(ctx, &gatewayv1.CancelTopupRequest{TopupId: theirs.ID}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("cancel of another account group's top-up: %v", err)
	}
	if got, err := g.Upstream.GetTopup(ctx, theirs.ID); err != nil || got.Status == upstream.StatusCancelled {
		t.Errorf("the refused cancel acted: %+v %v", got, err)
	}
	if _, err := topups.CancelTopup(ctx, &gatewayv1.CancelTopupRequest{TopupId: mine.GetTopup().GetId()}); err != nil {
		t.Errorf("cancel of its own top-up: %v", err)
	}
	// A virtual cash decrease, which Upvest cannot be asked about: its
	// account group comes from the gateway's own record.
	vc := g.VirtualCash()
	dec, err := vc.CreateVirtualCashDecrease(ctx, &gatewayv1.CreateVirtualCashDecreaseRequest{RequestId: uuid.NewString(), AccountGroupId: g.ag, Amount: "1.00", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.CancelVirtualCashDecrease(ctx, &gatewayv1.CancelVirtualCashDecreaseRequest{VirtualCashDecreaseId: dec.GetVirtualCashDecrease().GetId()}); err != nil {
		t.Errorf("cancel of its own decrease: %v", err)
	}
	theirDec, err := g.Upstream.CreateVirtualCashDecrease(ctx, upstream.VirtualCashRequest{AccountGroupID: other, Amount: "1.00", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.CancelVirtualCashDecrease(ctx, &gatewayv1.CancelVirtualCashDecreaseRequest{VirtualCashDecreaseId: theirDec.ID}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("cancel of another account group's decrease: %v", err)
	}

	// Watches: its own group, not another, and not all of them.
	for _, tc := range []struct {
		ag   string
		want codes.Code
	}{{g.ag, codes.OK}, {other, codes.PermissionDenied}, {"", codes.PermissionDenied}} {
		wctx, cancel := context.WithCancel(ctx)
		s, err := topups.WatchTopupEvents(wctx, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: tc.ag})
		if err == nil {
			_, err = s.Recv()
		}
		cancel()
		if status.Code(err) != tc.want {
			t.Errorf("watch of %q: %v, want %v", tc.ag, err, tc.want)
		}
	}
	// REST passes the same checks.
	worker := g.ca.Client(t, "", payoutWorker)
	if code, resp := g.rest(t, g.restClient(&worker.TLS), http.MethodGet, "/v1/payments/topups/"+theirs.ID, ""); code != http.StatusForbidden {
		t.Errorf("REST get of another account group's top-up: %d %s", code, resp)
	}
}

// TestBearerTokens: callers behind a TLS-terminating mesh bring a JWT; a
// wrong audience or an expired one is refused.
func TestBearerTokens(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := auth.JWKSFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewJWTVerifier(keys, "https://idp.bank.example", "upvest-gateway")
	if err != nil {
		t.Fatal(err)
	}
	g := startSecure(t, false, auth.WithJWT(verifier))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(aud string, exp time.Time) string {
		payload, _ := json.Marshal(map[string]any{"sub": "balance-dashboard", "iss": "https://idp.bank.example", "aud": aud, "exp": exp.Unix()})
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	// The mesh terminated mutual TLS: server-only TLS here.
	balances := gatewayv1.NewCashBalanceServiceClient(g.client(t, nil, g.ca))
	call := func(tok string) error {
		ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+tok)
		_, err := balances.GetCashBalance(ctx, &gatewayv1.GetCashBalanceRequest{AccountGroupId: g.ag})
		return err
	}
	if err := call(token("upvest-gateway", time.Now().Add(time.Hour))); err != nil {
		t.Errorf("gRPC, valid token: %v", err)
	}
	for name, tok := range map[string]string{
		"wrong audience": token("another-service", time.Now().Add(time.Hour)),
		"expired":        token("upvest-gateway", time.Now().Add(-time.Hour)),
	} {
		if err := call(tok); status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC, %s: %v, want Unauthenticated", name, err)
		}
	}
	rest := g.restClient(nil)
	get := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, g.BaseURL+"/v1/account_groups/"+g.ag+"/payments/cash_balance", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := rest.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(token("upvest-gateway", time.Now().Add(time.Hour))); code != http.StatusOK {
		t.Errorf("valid token: %d", code)
	}
	if code := get(token("another-service", time.Now().Add(time.Hour))); code != http.StatusUnauthorized {
		t.Errorf("wrong audience: %d, want 401", code)
	}
	if code := get(token("upvest-gateway", time.Now().Add(-time.Hour))); code != http.StatusUnauthorized {
		t.Errorf("expired: %d, want 401", code)
	}
}
