package auth_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/auth"
)

// testPolicy grants the harness's callers.
const testPolicy = `
callers:
  - identity: "spiffe://bank.example/ns/payouts/sa/payout-worker"
    methods: ["upvest.gateway.v1.PaymentsService/*", "upvest.gateway.v1.CashBalanceService/GetCashBalance"]
    account_groups: ["2596db3b-0d03-4651-9eda-970910479dfb"]
  - identity: "balance-dashboard"
    methods: ["upvest.gateway.v1.CashBalanceService/*"]
  - identity: "payments-auditor"
    methods: ["upvest.gateway.v1.PaymentsService/*"]
  - identity: noisy
    methods: ["*"]
    limits: {calls_per_second: 0.001, burst: 2, streams: 2}
  - identity: quiet
    methods: ["*"]
`

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, mutualTLS: true})
	for _, tc := range []struct {
		name   string
		leaf   string
		call   call
		code   codes.Code
		reason string
		msg    []string
		caller string
	}{
		{name: "no client certificate", leaf: "", call: getCashBalance(groupA), code: codes.Unavailable},
		{name: "certificate from a foreign CA", leaf: "outsider", call: getCashBalance(groupA), code: codes.Unavailable},
		{name: "URI SAN identity", leaf: "payout-worker", call: getCashBalance(groupA), code: codes.OK, caller: payoutWorker},
		{name: "common name identity", leaf: "balance-dashboard", call: getCashBalance(groupB), code: codes.OK, caller: "balance-dashboard"},
		{
			name: "method not granted", leaf: "balance-dashboard", call: createWithdrawal(groupA),
			code: codes.PermissionDenied, reason: auth.ReasonMethodNotAllowed,
			msg: []string{"/upvest.gateway.v1.PaymentsService/CreateWithdrawal"},
		},
		{
			name: "method of a granted service not granted", leaf: "payout-worker", call: watchCashBalance(groupA),
			code: codes.PermissionDenied, reason: auth.ReasonMethodNotAllowed,
			msg: []string{"/upvest.gateway.v1.CashBalanceService/WatchCashBalance"},
		},
		{name: "identity not in the policy", leaf: "stranger", call: getCashBalance(groupA), code: codes.Unauthenticated, reason: auth.ReasonUnknownCaller, msg: []string{`"stranger"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			var header metadata.MD
			err := tc.call(ctx, h.conn(t, tc.leaf), grpc.Header(&header))
			if tc.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				if got := header.Get(callerHeader); len(got) != 1 || got[0] != tc.caller {
					t.Fatalf("the handler saw caller %v, want %q", got, tc.caller)
				}
				return
			}
			st := wantStatus(t, err, tc.code, tc.reason, tc.msg...)
			if tc.code == codes.PermissionDenied && strings.Contains(st.Message(), "payout-worker") && tc.leaf != "payout-worker" {
				t.Errorf("a refusal names another caller: %q", st.Message())
			}
		})
	}
	t.Cleanup(func() {
		out := h.logs.String()
		if !strings.Contains(out, "auth: call refused") || !strings.Contains(out, "code=PermissionDenied") || !strings.Contains(out, "caller=balance-dashboard") {
			t.Errorf("refusals are not logged:\n%s", out)
		}
	})
}

type call func(ctx context.Context, conn *grpc.ClientConn, opts ...grpc.CallOption) error

func getCashBalance(group string) call {
	return func(ctx context.Context, conn *grpc.ClientConn, opts ...grpc.CallOption) error {
		_, err := gatewayv1.NewCashBalanceServiceClient(conn).GetCashBalance(ctx, &gatewayv1.GetCashBalanceRequest{AccountGroupId: group}, opts...)
		return err
	}
}

func createWithdrawal(group string) call {
	return func(ctx context.Context, conn *grpc.ClientConn, opts ...grpc.CallOption) error {
		_, err := gatewayv1.NewPaymentsServiceClient(conn).CreateWithdrawal(ctx, &gatewayv1.CreateWithdrawalRequest{AccountGroupId: group, Amount: "1.00"}, opts...)
		return err
	}
}

func getWithdrawal(id string) call {
	return func(ctx context.Context, conn *grpc.ClientConn, opts ...grpc.CallOption) error {
		_, err := gatewayv1.NewPaymentsServiceClient(conn).GetWithdrawal(ctx, &gatewayv1.GetWithdrawalRequest{WithdrawalId: id}, opts...)
		return err
	}
}

// watchCashBalance opens the stream and waits for its first message, then
// ends it.
func watchCashBalance(group string) call {
	return func(ctx context.Context, conn *grpc.ClientConn, opts ...grpc.CallOption) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := gatewayv1.NewCashBalanceServiceClient(conn).WatchCashBalance(ctx, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: group}, opts...)
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
}

// watchPayments is watchCashBalance for WatchPaymentEvents.
func watchPayments(group string) call {
	return func(ctx context.Context, conn *grpc.ClientConn, opts ...grpc.CallOption) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := gatewayv1.NewPaymentsServiceClient(conn).WatchPaymentEvents(ctx, &gatewayv1.WatchPaymentEventsRequest{AccountGroupId: group}, opts...)
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
}

func TestAccountGroups(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, mutualTLS: true})
	for _, tc := range []struct {
		name   string
		leaf   string
		call   call
		code   codes.Code
		reason string
	}{
		{"create in a granted group", "payout-worker", createWithdrawal(groupA), codes.OK, ""},
		{"create in a granted group, upper case", "payout-worker", createWithdrawal(strings.ToUpper(groupA)), codes.OK, ""},
		{"create in another group", "payout-worker", createWithdrawal(groupB), codes.PermissionDenied, auth.ReasonAccountGroupNotAllowed},
		{"create without a group", "payout-worker", createWithdrawal(""), codes.PermissionDenied, auth.ReasonAccountGroupRequired},
		{"unary read in another group", "payout-worker", getCashBalance(groupB), codes.PermissionDenied, auth.ReasonAccountGroupNotAllowed},
		{"stream of a granted group", "payout-worker", watchPayments(groupA), codes.OK, ""},
		{"stream of another group", "payout-worker", watchPayments(groupB), codes.PermissionDenied, auth.ReasonAccountGroupNotAllowed},
		{"stream of every group needs the wildcard", "payout-worker", watchPayments(""), codes.PermissionDenied, auth.ReasonAccountGroupRequired},
		{"stream of every group with the wildcard", "payments-auditor", watchPayments(""), codes.OK, ""},
		{"get by id, resource in a granted group", "payout-worker", getWithdrawal("w-in-a"), codes.OK, ""},
		{"get by id, resource in another group", "payout-worker", getWithdrawal("w-in-b"), codes.PermissionDenied, auth.ReasonAccountGroupNotAllowed},
		{"get by id with the wildcard", "payments-auditor", getWithdrawal("w-in-b"), codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call(testContext(t), h.conn(t, tc.leaf))
			if tc.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			st := wantStatus(t, err, tc.code, tc.reason, "/upvest.gateway.v1.")
			// The message never names the account group: for a resource read
			// by id it would be another caller's.
			if strings.Contains(st.Message(), groupB) || strings.Contains(st.Message(), groupA) {
				t.Errorf("message names an account group: %q", st.Message())
			}
		})
	}
}

func TestCheckAccountGroupWithoutGuard(t *testing.T) {
	t.Parallel()
	if err := auth.CheckAccountGroup(context.Background(), groupB); err != nil {
		t.Fatalf("CheckAccountGroup outside the interceptors = %v, want nil", err)
	}
	if auth.Restricted(context.Background()) {
		t.Fatal("Restricted outside the interceptors = true")
	}
	if _, ok := auth.CallerFromContext(context.Background()); ok {
		t.Fatal("CallerFromContext found a caller in an empty context")
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, mutualTLS: true})
	ctx := testContext(t)
	noisy, quiet := h.conn(t, "noisy"), h.conn(t, "quiet")
	// noisy has a burst of 2 and earns a call every 1000 s.
	for i := range 2 {
		if err := getCashBalance(groupA)(ctx, noisy); err != nil {
			t.Fatalf("noisy call %d within its burst: %v", i, err)
		}
	}
	for range 3 {
		st := wantStatus(t, getCashBalance(groupA)(ctx, noisy), codes.ResourceExhausted, auth.ReasonCallerRateLimited,
			"/upvest.gateway.v1.CashBalanceService/GetCashBalance")
		ri := retryInfo(st)
		if ri == nil || ri.GetRetryDelay().AsDuration() <= 0 || ri.GetRetryDelay().AsDuration() > 1000*time.Second {
			t.Fatalf("RetryInfo = %v, want a delay in (0, 1000s]", ri)
		}
	}
	// Another caller is not affected.
	for i := range 10 {
		if err := getCashBalance(groupA)(ctx, quiet); err != nil {
			t.Fatalf("quiet call %d: %v", i, err)
		}
	}
	// Streams are calls too.
	wantStatus(t, watchCashBalance(groupA)(ctx, noisy), codes.ResourceExhausted, auth.ReasonCallerRateLimited)
}

func TestStreamLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: `
callers:
  - identity: noisy
    methods: ["*"]
    limits: {streams: 2}
  - identity: quiet
    methods: ["*"]
    limits: {streams: 1}
`, mutualTLS: true})
	ctx := testContext(t)
	noisy, quiet := h.conn(t, "noisy"), h.conn(t, "quiet")

	// open starts a stream and waits for its first message, so the server
	// holds it open.
	open := func(conn *grpc.ClientConn) (context.CancelFunc, error) {
		sctx, cancel := context.WithCancel(ctx)
		s, err := gatewayv1.NewCashBalanceServiceClient(conn).WatchCashBalance(sctx, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: groupA})
		if err == nil {
			_, err = s.Recv()
		}
		if err != nil {
			cancel()
		}
		return cancel, err
	}
	var cancels []context.CancelFunc
	for i := range 2 {
		cancel, err := open(noisy)
		if err != nil {
			t.Fatalf("stream %d within the limit: %v", i, err)
		}
		cancels = append(cancels, cancel)
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	_, err := open(noisy)
	st := wantStatus(t, err, codes.ResourceExhausted, auth.ReasonCallerStreamLimit, "/upvest.gateway.v1.CashBalanceService/WatchCashBalance")
	if ri := retryInfo(st); ri == nil || ri.GetRetryDelay().AsDuration() <= 0 {
		t.Fatalf("RetryInfo = %v", ri)
	}
	// Another caller's streams are its own.
	cancelQuiet, err := open(quiet)
	if err != nil {
		t.Fatalf("quiet's stream: %v", err)
	}
	defer cancelQuiet()
	// Unary calls are not streams.
	if err := getCashBalance(groupA)(ctx, noisy); err != nil {
		t.Fatalf("a unary call at the stream limit: %v", err)
	}

	// Once a stream ends, its slot is free again (the server notices the
	// cancellation asynchronously: wait for it).
	cancels[0]()
	for {
		cancel, err := open(noisy)
		if err == nil {
			cancels = append(cancels, cancel)
			break
		}
		wantStatus(t, err, codes.ResourceExhausted, auth.ReasonCallerStreamLimit)
		select {
		case <-ctx.Done():
			t.Fatal("the ended stream's slot never came free")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestPolicyReload(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, mutualTLS: true})
	ctx := testContext(t)
	dashboard := h.conn(t, "balance-dashboard")
	wantStatus(t, createWithdrawal(groupA)(ctx, dashboard), codes.PermissionDenied, auth.ReasonMethodNotAllowed)

	// New rules apply to the next call.
	h.replacePolicy(t, strings.Replace(testPolicy, `methods: ["upvest.gateway.v1.CashBalanceService/*"]`,
		`methods: ["upvest.gateway.v1.CashBalanceService/*", "upvest.gateway.v1.PaymentsService/CreateWithdrawal"]`, 1))
	if err := createWithdrawal(groupA)(ctx, dashboard); err != nil {
		t.Fatalf("after granting CreateWithdrawal: %v", err)
	}

	// A broken file keeps the rules in force, and says why.
	h.replacePolicy(t, "callers:\n  - identity: balance-dashboard\n    methods: ['upvest.gateway.v1.NoSuchService/*']\n")
	if err := createWithdrawal(groupA)(ctx, dashboard); err != nil {
		t.Fatalf("after a broken policy: %v (the previous policy should still apply)", err)
	}
	out := h.logs.String()
	for _, want := range []string{"policy reloaded", "the new policy does not load", "no service upvest.gateway.v1.NoSuchService", "policy line 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}

	// Removing a caller ends its access.
	h.replacePolicy(t, "callers:\n  - identity: quiet\n    methods: ['*']\n")
	wantStatus(t, getCashBalance(groupA)(ctx, dashboard), codes.Unauthenticated, auth.ReasonUnknownCaller)
}

func TestReservedMetadataOverTCP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, mutualTLS: true})
	ctx := metadata.AppendToOutgoingContext(testContext(t), auth.RESTCallerMetadata, payoutWorker)
	// Even a caller with a valid certificate may not send it.
	wantStatus(t, getCashBalance(groupA)(ctx, h.conn(t, "balance-dashboard")), codes.Unauthenticated, auth.ReasonUnauthenticated, "reserved")
}

func TestPublicMethods(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, jwt: true, options: []auth.Option{auth.WithPublicMethods(healthpb.Health_Check_FullMethodName)}})
	conn := h.conn(t, "")
	ctx := testContext(t)
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check without credentials: %v", err)
	}
	wantStatus(t, getCashBalance(groupA)(ctx, conn), codes.Unauthenticated, auth.ReasonUnauthenticated, "no client certificate and no bearer token")
}

func TestUnauthenticatedMode(t *testing.T) {
	t.Parallel()
	t.Run("without a policy everything is allowed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, setup{options: []auth.Option{auth.WithUnauthenticated()}})
		ctx := testContext(t)
		conn := h.conn(t, "")
		var header metadata.MD
		if err := createWithdrawal(groupB)(ctx, conn, grpc.Header(&header)); err != nil {
			t.Fatal(err)
		}
		if got := header.Get(callerHeader); len(got) != 1 || got[0] != auth.AnonymousIdentity {
			t.Fatalf("caller = %v, want %q", got, auth.AnonymousIdentity)
		}
		for range 200 { // no limits either
			if err := getCashBalance(groupA)(ctx, conn); err != nil {
				t.Fatal(err)
			}
		}
		resp, body := restGet(t, h.httpClient(t, ""), h.restURL+"/v1/account_groups/"+groupA+"/payments/cash_balance", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Grpc-Metadata-"+callerHeader) != auth.AnonymousIdentity {
			t.Fatalf("REST: %d %s %v", resp.StatusCode, body, resp.Header)
		}
	})
	t.Run("with a policy it applies to the anonymous identity", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, setup{
			policy:  "callers:\n  - identity: anonymous\n    methods: ['upvest.gateway.v1.CashBalanceService/*']\n",
			options: []auth.Option{auth.WithUnauthenticated()},
		})
		ctx := testContext(t)
		conn := h.conn(t, "balance-dashboard") // a certificate changes nothing
		if err := getCashBalance(groupA)(ctx, conn); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, createWithdrawal(groupA)(ctx, conn), codes.PermissionDenied, auth.ReasonMethodNotAllowed)
	})
}

func TestNewGuardErrors(t *testing.T) {
	t.Parallel()
	p, err := auth.ParsePolicy([]byte(testPolicy), gatewayMethods)
	if err != nil {
		t.Fatal(err)
	}
	signer := newTokenSigner(t)
	keys := jwksFile(t, signer.jwks(t))
	v, err := auth.NewJWTVerifier(keys, testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []auth.Option
		want string
	}{
		{"no policy", nil, "a policy"},
		{"no policy with JWT", []auth.Option{auth.WithJWT(v)}, "a policy"},
		{"anonymous with JWT", []auth.Option{auth.WithUnauthenticated(), auth.WithJWT(v)}, "exclude each other"},
	} {
		if _, err := auth.NewGuard(tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewGuard = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := auth.NewGuard(auth.WithPolicy(p)); err != nil {
		t.Errorf("NewGuard(WithPolicy) = %v", err)
	}
}

// restGet sends a GET with extra headers and returns the response and body.
func restGet(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestREST(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{policy: testPolicy, mutualTLS: true})
	balance := func(group string) string { return h.restURL + "/v1/account_groups/" + group + "/payments/cash_balance" }
	injected := http.Header{"Grpc-Metadata-" + auth.RESTCallerMetadata: {base64.StdEncoding.EncodeToString([]byte(payoutWorker))}}
	for _, tc := range []struct {
		name   string
		leaf   string
		url    string
		header http.Header
		code   int
		caller string
	}{
		{"client certificate", "payout-worker", balance(groupA), nil, http.StatusOK, payoutWorker},
		{"client certificate, account group not granted", "payout-worker", balance(groupB), nil, http.StatusForbidden, ""},
		{"common name", "balance-dashboard", balance(groupB), nil, http.StatusOK, "balance-dashboard"},
		{"no client certificate", "", balance(groupA), nil, http.StatusUnauthorized, ""},
		{"identity not in the policy", "stranger", balance(groupA), nil, http.StatusUnauthorized, ""},
		{"injected identity header", "", balance(groupA), injected, http.StatusUnauthorized, ""},
		{"injected identity header beside a certificate", "balance-dashboard", balance(groupB), injected, http.StatusOK, "balance-dashboard"},
		{"injected identity through a face without the matcher", "", h.restURL + "/unguarded/v1/account_groups/" + groupA + "/payments/cash_balance", injected, http.StatusUnauthorized, ""},
		{"injected identity beside a certificate through a face without the matcher", "balance-dashboard", h.restURL + "/unguarded/v1/account_groups/" + groupA + "/payments/cash_balance", injected, http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := restGet(t, h.httpClient(t, tc.leaf), tc.url, tc.header)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			if tc.caller != "" {
				if got := resp.Header.Get("Grpc-Metadata-" + callerHeader); got != tc.caller {
					t.Fatalf("the handler saw caller %q, want %q", got, tc.caller)
				}
			}
		})
	}

	// AuthenticateHTTP for routes outside the REST face.
	for _, tc := range []struct {
		leaf, want string
		code       int
	}{
		{"payout-worker", payoutWorker + " client-certificate", http.StatusOK},
		{"", "", http.StatusUnauthorized},
	} {
		resp, body := restGet(t, h.httpClient(t, tc.leaf), h.restURL+"/whoami", nil)
		if resp.StatusCode != tc.code || (tc.want != "" && body != tc.want) {
			t.Errorf("whoami as %q: %d %q, want %d %q", tc.leaf, resp.StatusCode, body, tc.code, tc.want)
		}
	}
}
