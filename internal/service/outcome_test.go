package service_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// TestUnknownOutcome: a create whose attempt may have acted upstream is
// retried with the same key until its outcome is known, past the retry
// policy's attempts; when the deadline comes first, the caller gets
// UNAVAILABLE with OUTCOME_UNKNOWN and the key, and a retry with that key
// settles it without acting twice.
func TestUnknownOutcome(t *testing.T) {
	t.Parallel()
	newWithdrawal := func(ag string) *gatewayv1.CreateWithdrawalRequest {
		return &gatewayv1.CreateWithdrawalRequest{RequestId: uuid.NewString(), ReferenceAccountId: uuid.NewString(),
			AccountGroupId: ag, UserId: uuid.NewString(), Amount: "1.00"}
	}
	fund := func(t *testing.T, g *servertest.Gateway, ag string) {
		t.Helper()
		var c gatewayv1.CreateTopupResponse
		checkOK(t, call(t, g, viaGRPC, createTopup(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "100.00", Currency: "EUR"}, &c))
		g.Sim.Advance() // CONFIRMED → SETTLED: cash available
	}

	t.Run("applied, then the connection drops", func(t *testing.T) {
		t.Parallel()
		for _, kind := range []upvestsim.FaultKind{upvestsim.FaultDropAfterApply, upvestsim.Fault504, upvestsim.Fault500} {
			t.Run(string(kind), func(t *testing.T) {
				t.Parallel()
				// One attempt by policy: only the unknown outcome makes it retry.
				g := servertest.Start(t, noRetry)
				ag := uuid.NewString()
				fund(t, g, ag)
				g.Sim.InjectFault(upvestsim.Fault{Kind: kind, Method: http.MethodPost, PathPrefix: "/payments/withdrawals", Count: 2, Delay: time.Millisecond})
				req := newWithdrawal(ag)
				var w gatewayv1.CreateWithdrawalResponse
				checkOK(t, call(t, g, viaGRPC, createWithdrawal(), req, &w))
				if n := g.Sim.Effects(req.RequestId); n != 1 {
					t.Fatalf("%d effects of one withdrawal", n)
				}
				if n := len(simRequests(g, http.MethodPost, "/payments/withdrawals")); n != 3 {
					t.Errorf("%d attempts, want 3 (two faults, then the answer)", n)
				}
			})
		}
	})

	t.Run("deadline first", func(t *testing.T) {
		t.Parallel()
		g := servertest.Start(t)
		ag := uuid.NewString()
		fund(t, g, ag)
		g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.Fault504, Method: http.MethodPost, PathPrefix: "/payments/withdrawals", Count: 1000, Delay: time.Millisecond})
		req := newWithdrawal(ag)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		var md metadata.MD
		_, err := g.Payments().CreateWithdrawal(ctx, req, grpc.Header(&md))
		st := status.Convert(err)
		if st.Code() != codes.Unavailable {
			t.Fatalf("code %v (%s), want Unavailable", st.Code(), st.Message())
		}
		var ei *errdetails.ErrorInfo
		for _, d := range st.Details() {
			if e, ok := d.(*errdetails.ErrorInfo); ok {
				ei = e
			}
		}
		if ei.GetReason() != "OUTCOME_UNKNOWN" || ei.GetMetadata()["idempotency_key"] != req.RequestId {
			t.Fatalf("ErrorInfo %v, want OUTCOME_UNKNOWN with the key", ei)
		}
		if got := md.Get("idempotency-key"); len(got) != 1 || got[0] != req.RequestId {
			t.Errorf("idempotency-key metadata %v", got)
		}
		g.Sim.ClearFaults()
		var w gatewayv1.CreateWithdrawalResponse
		checkOK(t, call(t, g, viaGRPC, createWithdrawal(), req, &w))
		if n := g.Sim.Effects(req.RequestId); n != 1 {
			t.Fatalf("%d effects of one withdrawal", n)
		}
	})

	t.Run("concurrent duplicates", func(t *testing.T) {
		t.Parallel()
		g := servertest.Start(t)
		ag := uuid.NewString()
		fund(t, g, ag)
		g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, Method: http.MethodPost, PathPrefix: "/payments/withdrawals", Delay: 500 * time.Millisecond})
		req := newWithdrawal(ag)
		ids := make([]string, 4)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				var w gatewayv1.CreateWithdrawalResponse
				if o := call(t, g, transports[i%2], createWithdrawal(), req, &w); o.code != codes.OK {
					t.Errorf("caller %d: %v %s", i, o.code, o.message)
				}
				ids[i] = w.GetWithdrawal().GetId()
			})
		}
		wg.Wait()
		for i := range ids {
			if ids[i] == "" || ids[i] != ids[0] {
				t.Fatalf("callers got %v, want one withdrawal", ids)
			}
		}
		if n := g.Sim.Effects(req.RequestId); n != 1 {
			t.Fatalf("%d effects", n)
		}
	})
}

// TestCancelReconciles: a cancel that took effect upstream is a success
// whatever happened to its answer, and so is a cancel of a cancelled
// resource; a cancel of one that can no longer be cancelled still fails.
func TestCancelReconciles(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			g := servertest.Start(t, noRetry)
			ag := uuid.NewString()
			var c gatewayv1.CreateTopupResponse
			checkOK(t, call(t, g, viaGRPC, createTopup(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "100.00", Currency: "EUR"}, &c))
			id := c.GetTopup().GetId()

			g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultDropAfterApply, Method: http.MethodDelete, PathPrefix: "/payments/topups/" + id})
			checkOK(t, call(t, g, tr, cancelTopup(id), &gatewayv1.CancelTopupRequest{TopupId: id}, &gatewayv1.CancelTopupResponse{}))
			// The caller's own retry after success succeeds too.
			checkOK(t, call(t, g, tr, cancelTopup(id), &gatewayv1.CancelTopupRequest{TopupId: id}, &gatewayv1.CancelTopupResponse{}))

			var settled gatewayv1.CreateTopupResponse
			checkOK(t, call(t, g, viaGRPC, createTopup(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "1.00", Currency: "EUR"}, &settled))
			g.Sim.Advance() // CONFIRMED → SETTLED
			sid := settled.GetTopup().GetId()
			if o := call(t, g, tr, cancelTopup(sid), &gatewayv1.CancelTopupRequest{TopupId: sid}, &gatewayv1.CancelTopupResponse{}); o.code != codes.FailedPrecondition {
				t.Errorf("cancel of a settled top-up: %v, want FailedPrecondition", o.code)
			}
		})
	}
}

// TestWaiterAnswersBeforeItsDeadline: a caller that waits for another
// call with its request_id, and whose deadline comes first, gets the
// gateway's answer (UNAVAILABLE, OUTCOME_UNKNOWN, the key to retry with)
// before its deadline, not a DEADLINE_EXCEEDED of its own client that
// tells it nothing.
func TestWaiterAnswersBeforeItsDeadline(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t)
	g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, Method: http.MethodPost, PathPrefix: "/payments/topups", Delay: 3 * time.Second})
	req := &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: uuid.NewString(), CashAmount: "7.00", Currency: "EUR"}
	first := make(chan error, 1)
	go func() {
		_, err := g.Topups().CreateTopup(context.Background(), req)
		first <- err
	}()
	servertest.WaitUntil(t, func() bool { return g.Idempotency.Stats().Runs == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := g.Topups().CreateTopup(ctx, req)
	st := status.Convert(err)
	var ei *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if e, ok := d.(*errdetails.ErrorInfo); ok {
			ei = e
		}
	}
	if st.Code() != codes.Unavailable || ei.GetReason() != "OUTCOME_UNKNOWN" || ei.GetMetadata()["idempotency_key"] != req.RequestId {
		t.Fatalf("waiter: %v %q %v; want Unavailable OUTCOME_UNKNOWN with the key", st.Code(), st.Message(), ei)
	}
	if err := <-first; err != nil {
		t.Fatalf("first caller: %v", err)
	}
}

// TestUnreadableTokenAnswer: a token answer that cannot be read (cut off,
// not JSON) is as good as none: the gateway asks again, and a caller whose
// call runs out of attempts meanwhile gets UNAVAILABLE, to retry, not
// INTERNAL, which would tell it the gateway is broken. Nothing was sent,
// so nothing happened.
func TestUnreadableTokenAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  []servertest.Option
		want  codes.Code
		calls int // top-up requests Upvest saw
	}{
		{"retried", nil, codes.OK, 1},
		{"out of attempts", []servertest.Option{noRetry}, codes.Unavailable, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := servertest.Start(t, tc.opts...)
			g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultUnreadableAnswer, Method: http.MethodPost, PathPrefix: "/auth/token"})
			req := &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: uuid.NewString(), CashAmount: "7.00", Currency: "EUR"}
			o := call(t, g, viaGRPC, createTopup(), req, &gatewayv1.CreateTopupResponse{})
			if o.code != tc.want {
				t.Fatalf("%v %s, want %v", o.code, o.message, tc.want)
			}
			if n := len(simRequests(g, http.MethodPost, "/payments/topups")); n != tc.calls {
				t.Errorf("%d top-up requests, want %d", n, tc.calls)
			}
		})
	}
}

// TestDecreaseCancelReconciles: Upvest cannot be asked about a virtual cash
// decrease, so the gateway's status index, fed by the decrease's events,
// tells a cancel whose answer was lost from one Upvest refused.
func TestDecreaseCancelReconciles(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, noRetry)
	ag := uuid.NewString()
	newDecrease := func() string {
		var d gatewayv1.CreateVirtualCashDecreaseResponse
		checkOK(t, call(t, g, viaGRPC, createVirtualCashDecrease(), &gatewayv1.CreateVirtualCashDecreaseRequest{
			RequestId: uuid.NewString(), AccountGroupId: ag, Amount: "1.00", Currency: "EUR"}, &d))
		return d.GetVirtualCashDecrease().GetId()
	}
	cancelIt := func(id string) outcome {
		return call(t, g, viaGRPC, cancelVirtualCashDecrease(id), &gatewayv1.CancelVirtualCashDecreaseRequest{VirtualCashDecreaseId: id}, &gatewayv1.CancelVirtualCashDecreaseResponse{})
	}
	id := newDecrease()
	g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultDropAfterApply, Method: http.MethodDelete, PathPrefix: "/virtual_cash_balances/decreases/" + id})
	checkOK(t, cancelIt(id))
	checkOK(t, cancelIt(id)) // again: still a success

	checkOK(t, call(t, g, viaGRPC, createVirtualCashIncrease(), &gatewayv1.CreateVirtualCashIncreaseRequest{
		RequestId: uuid.NewString(), AccountGroupId: ag, Amount: "10.00", Currency: "EUR"}, &gatewayv1.CreateVirtualCashIncreaseResponse{}))
	g.Sim.Advance() // the increase is confirmed: cash to cover a decrease
	confirmed := newDecrease()
	g.Sim.Advance() // ISSUED → CONFIRMED
	if o := cancelIt(confirmed); o.code != codes.FailedPrecondition {
		t.Errorf("cancel of a confirmed decrease: %v, want FailedPrecondition", o.code)
	}
}
