package service_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// TestRequestIDReuse: the same request_id with a different request is
// ALREADY_EXISTS naming the reuse, and Upvest never sees it; the same
// request_id in upper case is the same request.
func TestRequestIDReuse(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			g := servertest.Start(t)
			key, ag := uuid.NewString(), uuid.NewString()
			req := func(k, amount string) *gatewayv1.CreateTopupRequest {
				return &gatewayv1.CreateTopupRequest{RequestId: k, AccountGroupId: ag, CashAmount: amount, Currency: "EUR"}
			}
			var first, again gatewayv1.CreateTopupResponse
			checkOK(t, call(t, g, tr, createTopup(), req(key, "10.00"), &first))
			before := apiRequests(g)

			o := call(t, g, tr, createTopup(), req(key, "11.00"), &gatewayv1.CreateTopupResponse{})
			ei, _ := detail[*errdetails.ErrorInfo](o)
			if o.code != codes.AlreadyExists || ei.GetReason() != "REQUEST_ID_REUSED" || ei.GetDomain() != "upvest-gateway" {
				t.Errorf("different amount: %v %v, want AlreadyExists REQUEST_ID_REUSED", o.code, ei)
			}
			if tr == viaREST && o.httpStatus != http.StatusConflict {
				t.Errorf("REST status %d, want 409", o.httpStatus)
			}

			checkOK(t, call(t, g, tr, createTopup(), req(strings.ToUpper(key), "10.00"), &again))
			if again.GetTopup().GetId() != first.GetTopup().GetId() {
				t.Errorf("upper-case request_id created %s, the first %s", again.GetTopup().GetId(), first.GetTopup().GetId())
			}
			if apiRequests(g) != before {
				t.Errorf("%d upstream calls for a reused and a repeated request_id, want none", apiRequests(g)-before)
			}
			if n := g.Sim.Effects(key); n != 1 {
				t.Errorf("%d effects", n)
			}
		})
	}
}

// TestStoredOutcomes: a repeat of a finished create is answered from the
// store, with no upstream call, whether it succeeded or was refused for
// good; a create whose failure is not final goes upstream again.
func TestStoredOutcomes(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, noRetry)
	ag := uuid.NewString()

	refused := &gatewayv1.CreateWithdrawalRequest{RequestId: uuid.NewString(), ReferenceAccountId: uuid.NewString(), AccountGroupId: ag, UserId: uuid.NewString(), Amount: "999.00"}
	o := call(t, g, viaGRPC, createWithdrawal(), refused, &gatewayv1.CreateWithdrawalResponse{})
	if o.code != codes.FailedPrecondition {
		t.Fatalf("withdrawal above the balance: %v", o.code)
	}
	before := apiRequests(g)
	if o := call(t, g, viaREST, createWithdrawal(), refused, &gatewayv1.CreateWithdrawalResponse{}); o.code != codes.FailedPrecondition || o.upvestRequestID == "" {
		t.Errorf("repeat of a refused create: %v, upvest-request-id %q", o.code, o.upvestRequestID)
	}
	if apiRequests(g) != before {
		t.Error("a repeat of a refused create went upstream")
	}

	// 503 is not final: the repeat goes upstream again and succeeds.
	g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault503, Method: http.MethodPost, PathPrefix: "/payments/topups"})
	topup := &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "5.00", Currency: "EUR"}
	if o := call(t, g, viaGRPC, createTopup(), topup, &gatewayv1.CreateTopupResponse{}); o.code != codes.Unavailable {
		t.Fatalf("503: %v", o.code)
	}
	var c gatewayv1.CreateTopupResponse
	checkOK(t, call(t, g, viaGRPC, createTopup(), topup, &c))
	if n := g.Sim.Effects(topup.RequestId); n != 1 {
		t.Errorf("%d effects", n)
	}
}

// TestReplicasRunOnce: concurrent duplicates on two replicas sharing a
// NATS make one upstream call, and every caller gets the same answer.
func TestReplicasRunOnce(t *testing.T) {
	t.Parallel()
	nats := eventstest.StartNATS(t)
	bucket := "REPLICAS_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	a := servertest.Start(t, servertest.WithNATS(nats), servertest.WithIdempotencyBucket(bucket))
	b := servertest.Start(t, servertest.WithNATS(nats), servertest.WithIdempotencyBucket(bucket), servertest.WithReplicaOf(a))
	a.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, Method: http.MethodPost, PathPrefix: "/payments/topups", Delay: 300 * time.Millisecond})
	req := &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: uuid.NewString(), CashAmount: "7.00", Currency: "EUR"}
	ids := make([]string, 6)
	var wg sync.WaitGroup
	for i := range ids {
		g := []*servertest.Gateway{a, b}[i%2]
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := g.Topups().CreateTopup(ctx, req)
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
				return
			}
			ids[i] = r.GetTopup().GetId()
		})
	}
	wg.Wait()
	for i := range ids {
		if ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("callers got %v, want one top-up", ids)
		}
	}
	if n := len(simRequests(a, http.MethodPost, "/payments/topups")); n != 1 {
		t.Errorf("%d upstream calls, want 1", n)
	}
	if n := a.Sim.Effects(req.RequestId); n != 1 {
		t.Errorf("%d effects", n)
	}
}
