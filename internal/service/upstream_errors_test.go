package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// noRetry makes the gateway's client try once, so one injected fault is
// the answer.
var noRetry = servertest.WithUpstreamOptions(upstream.WithRetry(upstream.RetryPolicy{MaxAttempts: 1}))

// TestUpstreamErrors: every kind of upstream failure becomes its gRPC code
// (and HTTP status over REST), with ErrorInfo and RequestInfo naming the
// upstream answer, and the upvest-request-id in the response header.
func TestUpstreamErrors(t *testing.T) {
	newTopup := func() *gatewayv1.CreateTopupRequest {
		return &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: uuid.NewString(), CashAmount: "10.00", Currency: "EUR"}
	}
	createWith := func(f upvestsim.Fault) func(*testing.T, *servertest.Gateway, transport) outcome {
		return func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
			f.Method, f.PathPrefix = http.MethodPost, "/payments/topups"
			g.Sim.InjectFault(f)
			return call(t, g, tr, createTopup(), newTopup(), &gatewayv1.CreateTopupResponse{})
		}
	}
	// A read of an existing top-up that meets the fault: a read has no
	// unknown outcome, so one failed attempt is its answer.
	getWith := func(f upvestsim.Fault) func(*testing.T, *servertest.Gateway, transport) outcome {
		return func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
			var c gatewayv1.CreateTopupResponse
			checkOK(t, call(t, g, viaGRPC, createTopup(), newTopup(), &c))
			id := c.GetTopup().GetId()
			f.Method, f.PathPrefix = http.MethodGet, "/payments/topups/"+id
			g.Sim.InjectFault(f)
			return call(t, g, tr, getTopup(id), &gatewayv1.GetTopupRequest{TopupId: id}, &gatewayv1.GetTopupResponse{})
		}
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		opts       []servertest.Option
		run        func(*testing.T, *servertest.Gateway, transport) outcome
		code       codes.Code
		httpStatus int
		reason     string
		upstream   string // ErrorInfo metadata http_status
		check      func(*testing.T, outcome)
	}{
		{
			name: "429", opts: []servertest.Option{noRetry},
			run:  createWith(upvestsim.Fault{Kind: upvestsim.Fault429}),
			code: codes.ResourceExhausted, httpStatus: 429, reason: "TOO_MANY_REQUESTS", upstream: "429",
			check: func(t *testing.T, o outcome) {
				ri, ok := detail[*errdetails.RetryInfo](o)
				if !ok || ri.GetRetryDelay().AsDuration() <= 0 {
					t.Errorf("no positive RetryInfo in %v", o.details)
				}
				if o.header != nil && o.header.Get("Retry-After") == "" {
					t.Error("REST 429 without Retry-After")
				}
			},
		},
		{
			// Without noRetry: enough faults to outlast every attempt.
			name: "429 after all retries",
			run:  createWith(upvestsim.Fault{Kind: upvestsim.Fault429, Count: servertest.TestRetryPolicy.MaxAttempts}),
			code: codes.ResourceExhausted, httpStatus: 429, reason: "TOO_MANY_REQUESTS", upstream: "429",
		},
		{name: "500", opts: []servertest.Option{noRetry}, run: getWith(upvestsim.Fault{Kind: upvestsim.Fault500}),
			code: codes.Unavailable, httpStatus: 503, reason: "INTERNAL_SERVER_ERROR", upstream: "500"},
		{name: "503", opts: []servertest.Option{noRetry}, run: createWith(upvestsim.Fault{Kind: upvestsim.Fault503}),
			code: codes.Unavailable, httpStatus: 503, reason: "SERVICE_UNAVAILABLE", upstream: "503"},
		{name: "504", opts: []servertest.Option{noRetry}, run: getWith(upvestsim.Fault{Kind: upvestsim.Fault504, Delay: 10 * time.Millisecond}),
			code: codes.Unavailable, httpStatus: 503, reason: "GATEWAY_TIMEOUT", upstream: "504"},
		{
			name: "404 unknown top-up",
			run: func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
				id := uuid.NewString()
				return call(t, g, tr, getTopup(id), &gatewayv1.GetTopupRequest{TopupId: id}, &gatewayv1.GetTopupResponse{})
			},
			code: codes.NotFound, httpStatus: 404, reason: "NOT_FOUND", upstream: "404",
		},
		{
			name: "422 cancel of a settled top-up",
			run: func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
				var c gatewayv1.CreateTopupResponse
				checkOK(t, call(t, g, viaGRPC, createTopup(), newTopup(), &c))
				g.Sim.Advance() // CONFIRMED → SETTLED
				id := c.GetTopup().GetId()
				return call(t, g, tr, cancelTopup(id), &gatewayv1.CancelTopupRequest{TopupId: id}, &gatewayv1.CancelTopupResponse{})
			},
			code: codes.FailedPrecondition, httpStatus: 400, reason: "UNPROCESSABLE_ENTITY", upstream: "422",
			check: func(t *testing.T, o outcome) {
				pf, ok := detail[*errdetails.PreconditionFailure](o)
				if !ok || len(pf.GetViolations()) != 1 || pf.GetViolations()[0].GetDescription() == "" {
					t.Errorf("no PreconditionFailure with a description in %v", o.details)
				}
			},
		},
		{
			name: "422 withdrawal above the balance",
			run: func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
				return call(t, g, tr, createWithdrawal(), &gatewayv1.CreateWithdrawalRequest{
					RequestId: uuid.NewString(), ReferenceAccountId: uuid.NewString(), AccountGroupId: uuid.NewString(), UserId: uuid.NewString(), Amount: "1000000.00",
				}, &gatewayv1.CreateWithdrawalResponse{})
			},
			code: codes.FailedPrecondition, httpStatus: 400, reason: "UNPROCESSABLE_ENTITY", upstream: "422",
		},
		{
			// The gateway is configured for GBP, the (simulated) upstream
			// knows only EUR: Upvest itself refuses the body.
			name: "400 from upstream",
			opts: []servertest.Option{servertest.WithServerOptions(server.WithServiceOptions(service.WithCurrencies("EUR", "GBP")))},
			run: func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
				r := newTopup()
				r.Currency = "GBP"
				return call(t, g, tr, createTopup(), r, &gatewayv1.CreateTopupResponse{})
			},
			code: codes.InvalidArgument, httpStatus: 400, upstream: "400",
			check: func(t *testing.T, o outcome) {
				br, ok := detail[*errdetails.BadRequest](o)
				if !ok || len(br.GetFieldViolations()) == 0 || br.GetFieldViolations()[0].GetDescription() == "" {
					t.Errorf("no BadRequest with the problem detail in %v", o.details)
				}
			},
		},
		{
			name: "403 missing scope",
			opts: []servertest.Option{servertest.WithScopes("topups:read")},
			run: func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
				return call(t, g, tr, createTopup(), newTopup(), &gatewayv1.CreateTopupResponse{})
			},
			code: codes.PermissionDenied, httpStatus: 403, reason: "FORBIDDEN", upstream: "403",
		},
		{
			// The simulator does not know the gateway's signing key: every
			// request, the token request included, is refused with 401.
			name: "401 refused credentials",
			opts: []servertest.Option{servertest.WithSimConfig(func(c *upvestsim.Config) {
				for k := range c.TenantKeys {
					c.TenantKeys[k] = otherKey.Public()
				}
			})},
			run: func(t *testing.T, g *servertest.Gateway, tr transport) outcome {
				return call(t, g, tr, createTopup(), newTopup(), &gatewayv1.CreateTopupResponse{})
			},
			code: codes.Internal, httpStatus: 500, reason: "UNAUTHORIZED", upstream: "401",
		},
	}
	for _, tc := range tests {
		for _, tr := range transports {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				g := servertest.Start(t, tc.opts...)
				o := tc.run(t, g, tr)
				if o.code != tc.code {
					t.Fatalf("code = %v (%s), want %v", o.code, o.message, tc.code)
				}
				if tr == viaREST && o.httpStatus != tc.httpStatus {
					t.Errorf("HTTP status = %d, want %d", o.httpStatus, tc.httpStatus)
				}
				ei, ok := detail[*errdetails.ErrorInfo](o)
				if !ok {
					t.Fatalf("no ErrorInfo in %v", o.details)
				}
				if ei.GetDomain() != "upvest.co" || (tc.reason != "" && ei.GetReason() != tc.reason) {
					t.Errorf("ErrorInfo = %v, want reason %s in domain upvest.co", ei, tc.reason)
				}
				md := ei.GetMetadata()
				if md["http_status"] != tc.upstream || !strings.HasPrefix(md["problem_type"], "https://docs.upvest.co/errors/") {
					t.Errorf("ErrorInfo metadata = %v, want http_status %s and the problem type", md, tc.upstream)
				}
				rid := md["upvest_request_id"]
				ri, ok := detail[*errdetails.RequestInfo](o)
				if rid == "" || !ok || ri.GetRequestId() != rid {
					t.Errorf("RequestInfo %v and ErrorInfo upvest_request_id %q: want the same, non-empty", ri, rid)
				}
				if !simAnswered(g, rid) {
					t.Errorf("upvest_request_id %q is not one the simulator answered with", rid)
				}
				if o.upvestRequestID != rid {
					t.Errorf("response upvest-request-id = %q, want %q", o.upvestRequestID, rid)
				}
				if strings.Contains(o.message, g.ClientSecret) || (o.problem != nil && strings.Contains(o.problem.Detail, g.ClientSecret)) {
					t.Error("the client secret leaked into the error")
				}
				if tc.check != nil {
					tc.check(t, o)
				}
			})
		}
	}
}

// TestDeadlineDuringRetries: while Upvest answers 503, the client retries,
// but never past the caller's deadline.
func TestDeadlineDuringRetries(t *testing.T) {
	slowRetries := servertest.WithUpstreamOptions(upstream.WithRetry(upstream.RetryPolicy{
		MaxAttempts: 1000, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Multiplier: 2,
	}))
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t, slowRetries)
			g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault503, Method: http.MethodGet, PathPrefix: "/payments/topups/", Count: 1000})
			id := uuid.NewString()
			start := time.Now()
			var code codes.Code
			if tr == viaGRPC {
				ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
				defer cancel()
				_, err := g.Topups().GetTopup(ctx, &gatewayv1.GetTopupRequest{TopupId: id})
				code = status.Code(err)
			} else {
				// grpc-gateway turns Grpc-Timeout into the call's deadline.
				res, _ := g.Do(t, http.MethodGet, "/v1/payments/topups/"+id, "", http.Header{"Grpc-Timeout": {"400m"}})
				code = map[int]codes.Code{504: codes.DeadlineExceeded, 503: codes.Unavailable}[res.StatusCode]
			}
			elapsed := time.Since(start)
			if code != codes.DeadlineExceeded && code != codes.Unavailable {
				t.Errorf("code = %v, want DeadlineExceeded or Unavailable", code)
			}
			if elapsed > 3*time.Second {
				t.Errorf("the call took %v with a 400ms deadline", elapsed)
			}
			if n := len(simRequests(g, http.MethodGet, "/payments/topups/"+id)); n < 2 || n > 100 {
				t.Errorf("upstream saw %d attempts; want a few retries, ended by the deadline", n)
			}
		})
	}
}

func simAnswered(g *servertest.Gateway, requestID string) bool {
	for _, r := range g.Sim.Requests() {
		if r.RequestID == requestID {
			return true
		}
	}
	return false
}

// TestPerMethodCallOptions: call options configured for one RPC apply to
// its upstream calls only.
func TestPerMethodCallOptions(t *testing.T) {
	g := servertest.Start(t, servertest.WithServerOptions(server.WithServiceOptions(
		service.WithCallOptions(gatewayv1.TopupService_GetTopup_FullMethodName, upstream.WithCallRetry(upstream.RetryPolicy{MaxAttempts: 1})))))
	id, ag := uuid.NewString(), uuid.NewString()

	g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault503, Method: http.MethodGet, PathPrefix: "/payments/topups/"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := g.Topups().GetTopup(ctx, &gatewayv1.GetTopupRequest{TopupId: id})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("GetTopup without retries: %v, want Unavailable", err)
	}
	if n := len(simRequests(g, http.MethodGet, "/payments/topups/"+id)); n != 1 {
		t.Errorf("GetTopup made %d attempts, want 1", n)
	}

	g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault503, Method: http.MethodGet, PathPrefix: "/account_groups/"})
	if _, err := g.Topups().ListTopups(ctx, &gatewayv1.ListTopupsRequest{AccountGroupId: ag}); err != nil {
		t.Errorf("ListTopups, which keeps the default retries: %v", err)
	}
	if n := len(simRequests(g, http.MethodGet, "/account_groups/"+ag+"/payments/topups")); n != 2 {
		t.Errorf("ListTopups made %d attempts, want 2", n)
	}
}
