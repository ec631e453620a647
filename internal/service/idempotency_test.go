package service_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// TestIdempotencyKeySources: the key comes from request_id or the
// Idempotency-Key header (metadata over gRPC), must agree when both are
// given, and is what Upvest receives and the caller gets back.
func TestIdempotencyKeySources(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t)
			ag := uuid.NewString()
			req := func(requestID string) *gatewayv1.CreateTopupRequest {
				return &gatewayv1.CreateTopupRequest{RequestId: requestID, AccountGroupId: ag, CashAmount: "5.00", Currency: "EUR"}
			}
			lastKey := func() string {
				recs := simRequests(g, http.MethodPost, "/payments/topups")
				return recs[len(recs)-1].Header.Get("Idempotency-Key")
			}

			t.Run("header only", func(t *testing.T) {
				k := uuid.NewString()
				o := call(t, g, tr, createTopup(), req(""), &gatewayv1.CreateTopupResponse{}, "Idempotency-Key", k)
				checkOK(t, o)
				if o.idempotencyKey != k || lastKey() != k {
					t.Errorf("key returned %q, sent upstream %q; want the header's %q", o.idempotencyKey, lastKey(), k)
				}
			})
			t.Run("both, equal", func(t *testing.T) {
				k := uuid.NewString()
				o := call(t, g, tr, createTopup(), req(k), &gatewayv1.CreateTopupResponse{}, "Idempotency-Key", strings.ToUpper(k))
				checkOK(t, o)
				if o.idempotencyKey != k || lastKey() != k {
					t.Errorf("key returned %q, sent upstream %q; want request_id %q", o.idempotencyKey, lastKey(), k)
				}
			})
			t.Run("both, different", func(t *testing.T) {
				before := apiRequests(g)
				o := call(t, g, tr, createTopup(), req(uuid.NewString()), &gatewayv1.CreateTopupResponse{}, "Idempotency-Key", uuid.NewString())
				if o.code != codes.InvalidArgument || strings.Join(o.fields(), ",") != "request_id" {
					t.Errorf("got %v %q, want InvalidArgument on request_id", o.code, o.fields())
				}
				if apiRequests(g) != before {
					t.Error("a conflicting key reached the upstream")
				}
			})
			t.Run("bad header", func(t *testing.T) {
				o := call(t, g, tr, createTopup(), req(""), &gatewayv1.CreateTopupResponse{}, "Idempotency-Key", "12345")
				if o.code != codes.InvalidArgument || strings.Join(o.fields(), ",") != "request_id" {
					t.Errorf("got %v %q, want InvalidArgument on request_id", o.code, o.fields())
				}
			})
			t.Run("request_id without hyphens", func(t *testing.T) {
				k := uuid.NewString()
				o := call(t, g, tr, createTopup(), req(strings.ReplaceAll(k, "-", "")), &gatewayv1.CreateTopupResponse{})
				checkOK(t, o)
				if o.idempotencyKey != k || lastKey() != k {
					t.Errorf("key returned %q, sent upstream %q; want the hyphenated %q", o.idempotencyKey, lastKey(), k)
				}
			})
			t.Run("same request_id twice", func(t *testing.T) {
				k := uuid.NewString()
				var a, b gatewayv1.CreateTopupResponse
				checkOK(t, call(t, g, tr, createTopup(), req(k), &a))
				checkOK(t, call(t, g, tr, createTopup(), req(k), &b))
				if a.GetTopup().GetId() == "" || a.GetTopup().GetId() != b.GetTopup().GetId() {
					t.Errorf("a retry with the same request_id created %q and %q", a.GetTopup().GetId(), b.GetTopup().GetId())
				}
				if n := g.Sim.Effects(k); n != 1 {
					t.Errorf("Effects(%s) = %d, want 1", k, n)
				}
			})
		})
	}
}

// TestRetriedPOSTKeepsIdempotencyKey: Upvest applies the top-up, then the
// connection drops; the client retries with the same key and gets the
// stored answer instead of a second top-up.
func TestRetriedPOSTKeepsIdempotencyKey(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t)
			g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultDropAfterApply, Method: http.MethodPost, PathPrefix: "/payments/topups", Count: 1})
			k := uuid.NewString()
			var resp gatewayv1.CreateTopupResponse
			o := call(t, g, tr, createTopup(), &gatewayv1.CreateTopupRequest{
				RequestId: k, AccountGroupId: uuid.NewString(), CashAmount: "42.00", Currency: "EUR",
			}, &resp)
			checkOK(t, o)
			if resp.GetTopup().GetId() == "" {
				t.Error("no top-up in the answer")
			}
			if n := g.Sim.Effects(k); n != 1 {
				t.Errorf("Effects(%s) = %d, want exactly 1", k, n)
			}
			recs := simRequests(g, http.MethodPost, "/payments/topups")
			if len(recs) != 2 {
				t.Fatalf("upstream saw %d POSTs, want 2 (the dropped one and the retry)", len(recs))
			}
			for i, r := range recs {
				if got := r.Header.Get("Idempotency-Key"); got != k {
					t.Errorf("attempt %d idempotency-key = %q, want %q", i+1, got, k)
				}
			}
			if recs[0].Fault != upvestsim.FaultDropAfterApply {
				t.Errorf("first attempt fault = %q, want drop_after_apply", recs[0].Fault)
			}
			if o.idempotencyKey != k {
				t.Errorf("response idempotency-key = %q, want %q", o.idempotencyKey, k)
			}
			if o.upvestRequestID != recs[1].RequestID {
				t.Errorf("response upvest-request-id = %q, want the answered attempt's %q", o.upvestRequestID, recs[1].RequestID)
			}
		})
	}
}

// TestRequestIDRequired: a creating call without request_id (or header) is
// refused before any upstream call, saying why; an operator who allows
// generated ids gets one per call, returned to the caller.
func TestRequestIDRequired(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			g := servertest.Start(t)
			req := &gatewayv1.CreateWithdrawalRequest{ReferenceAccountId: uuid.NewString(), AccountGroupId: uuid.NewString(), UserId: uuid.NewString(), Amount: "10.00"}
			before := apiRequests(g)
			o := call(t, g, tr, createWithdrawal(), req, &gatewayv1.CreateWithdrawalResponse{})
			if o.code != codes.InvalidArgument || strings.Join(o.fields(), ",") != "request_id" || !strings.Contains(fmt.Sprint(o.details), "no retry is safe") {
				t.Errorf("got %v %q %v, want InvalidArgument on request_id saying why", o.code, o.fields(), o.details)
			}
			if apiRequests(g) != before {
				t.Error("a create without request_id reached the upstream")
			}

			g = servertest.Start(t, servertest.WithServerOptions(server.WithServiceOptions(service.WithGeneratedRequestIDs())))
			var created gatewayv1.CreateTopupResponse
			o = call(t, g, tr, createTopup(), &gatewayv1.CreateTopupRequest{AccountGroupId: uuid.NewString(), CashAmount: "1.00", Currency: "EUR"}, &created)
			checkOK(t, o)
			recs := simRequests(g, http.MethodPost, "/payments/topups")
			if sent := recs[len(recs)-1].Header.Get("Idempotency-Key"); o.idempotencyKey == "" || sent != o.idempotencyKey {
				t.Errorf("generated key returned %q, sent upstream %q", o.idempotencyKey, sent)
			}
		})
	}
}
