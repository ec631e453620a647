package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/tracing"
)

// The whole path of one creating call, caller to simulator and back: gRPC,
// validation, token, signature (P-256), HTTP to the simulator (which
// verifies the signature and acts), mapping. The simulator's own work is
// in the numbers too; the gateway's share is what changes between runs.

func BenchmarkCreateTopupGRPC(b *testing.B) {
	g := servertest.Start(b, servertest.WithoutEvents(), servertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	benchmarkCreateTopup(b, g)
}

// BenchmarkCreateTopupGRPCObserved is the call as the binary serves it:
// with metrics, and tracing wired in but exporting nothing (no OTEL_*
// settings), the trace context still read and forwarded.
func BenchmarkCreateTopupGRPCObserved(b *testing.B) {
	tr, err := tracing.New(context.Background(), tracing.Settings{}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	g := servertest.Start(b, servertest.WithoutEvents(), servertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		servertest.WithMetrics(metrics.New("bench")), servertest.WithTracing(tr.Provider, tr.Propagator))
	benchmarkCreateTopup(b, g)
}

func benchmarkCreateTopup(b *testing.B, g *servertest.Gateway) {
	c := g.Topups()
	ctx := context.Background()
	req := &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: uuid.NewString(), CashAmount: "10.00", Currency: "EUR"}
	b.ReportAllocs()
	for b.Loop() {
		req.RequestId = uuid.NewString()
		if _, err := c.CreateTopup(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateTopupREST(b *testing.B) {
	g := servertest.Start(b, servertest.WithoutEvents(), servertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	body := `{"account_group_id":"` + uuid.NewString() + `","cash_amount":"10.00","currency":"EUR"}`
	b.ReportAllocs()
	for b.Loop() {
		res, _ := g.Do(b, "POST", "/v1/payments/topups", body, nil)
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
