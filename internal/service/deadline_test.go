package service_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// TestDefaultTimeout: a call that brings no deadline gets its method's
// default (WithDefaultTimeout) and ends with DEADLINE_EXCEEDED instead of
// waiting on a stalled Upvest; another method keeps the general default,
// and a caller's own deadline wins over the method's.
func TestDefaultTimeout(t *testing.T) {
	t.Parallel()
	const short, stall = 300 * time.Millisecond, time.Second
	g := servertest.Start(t, servertest.WithServerOptions(server.WithServiceOptions(
		service.WithDefaultTimeout(gatewayv1.TopupService_GetTopup_FullMethodName, short))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ag := uuid.NewString()
	created, err := g.Topups().CreateTopup(ctx, &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "5.00", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	get := &gatewayv1.GetTopupRequest{TopupId: created.GetTopup().GetId()}
	stalled := func() {
		g.Sim.ClearFaults()
		g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, Method: http.MethodGet, Delay: stall, Count: 10})
	}

	stalled()
	start := time.Now()
	_, err = g.Topups().GetTopup(context.Background(), get)
	if took := time.Since(start); status.Code(err) != codes.DeadlineExceeded || took >= stall {
		t.Errorf("GetTopup without a deadline: %v after %v; want DEADLINE_EXCEEDED after about %v", err, took, short)
	}

	stalled()
	start = time.Now()
	if _, err := g.Topups().ListTopups(context.Background(), &gatewayv1.ListTopupsRequest{AccountGroupId: ag}); err != nil || time.Since(start) < stall {
		t.Errorf("ListTopups without a deadline: %v after %v; want the answer, after the stall", err, time.Since(start))
	}

	stalled()
	start = time.Now()
	if _, err := g.Topups().GetTopup(ctx, get); err != nil || time.Since(start) < stall {
		t.Errorf("GetTopup with the caller's deadline: %v after %v; want the answer, after the stall", err, time.Since(start))
	}
}
