package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/google/uuid"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/tracing"
)

// The whole path of one call, caller to simulator and back: gRPC or REST,
// validation, token, signature (P-256), HTTP to the simulator (which
// verifies the signature and acts), mapping. The simulator's own work is
// in the numbers too; the gateway's share is what changes between runs.
// cmd/gateway-bench measures the gateway's process alone.

// benchGateway is a gateway as the binary runs it, but for the event log
// (a create then runs without the idempotency store: see the ...Store
// benchmarks for it).
func benchGateway(b *testing.B, opts ...servertest.Option) *servertest.Gateway {
	return servertest.Start(b, append([]servertest.Option{servertest.WithoutEvents(),
		servertest.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))}, opts...)...)
}

// observed is the call as the binary serves it: with metrics, and tracing
// wired in but exporting nothing (no OTEL_* settings), the trace context
// still read and forwarded.
func observed(b *testing.B) []servertest.Option {
	tr, err := tracing.New(context.Background(), tracing.Settings{}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return []servertest.Option{servertest.WithMetrics(metrics.New("bench")), servertest.WithTracing(tr.Provider, tr.Propagator)}
}

func BenchmarkCreateTopupGRPC(b *testing.B) {
	benchmarkCreateTopup(b, benchGateway(b))
}

func BenchmarkCreateTopupGRPCObserved(b *testing.B) {
	benchmarkCreateTopup(b, benchGateway(b, observed(b)...))
}

// BenchmarkCreateTopupGRPCStore is a create with the idempotency store
// (the embedded NATS), as every create runs in the binary.
func BenchmarkCreateTopupGRPCStore(b *testing.B) {
	benchmarkCreateTopup(b, servertest.Start(b, append(observed(b), servertest.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))...))
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
	benchmarkCreateTopupREST(b, benchGateway(b))
}

func BenchmarkCreateTopupRESTObserved(b *testing.B) {
	benchmarkCreateTopupREST(b, benchGateway(b, observed(b)...))
}

func benchmarkCreateTopupREST(b *testing.B, g *servertest.Gateway) {
	group := uuid.NewString()
	b.ReportAllocs()
	for b.Loop() {
		body := `{"request_id":"` + uuid.NewString() + `","account_group_id":"` + group + `","cash_amount":"10.00","currency":"EUR"}`
		res, _ := g.Do(b, http.MethodPost, "/v1/payments/topups", body, nil)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// topupToRead creates the top-up the read benchmarks read.
func topupToRead(b *testing.B, g *servertest.Gateway) string {
	created, err := g.Topups().CreateTopup(context.Background(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(),
		AccountGroupId: uuid.NewString(), CashAmount: "10.00", Currency: "EUR"})
	if err != nil {
		b.Fatal(err)
	}
	return created.GetTopup().GetId()
}

func BenchmarkGetTopupGRPCObserved(b *testing.B) {
	g := benchGateway(b, observed(b)...)
	req := &gatewayv1.GetTopupRequest{TopupId: topupToRead(b, g)}
	c := g.Topups()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetTopup(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetTopupRESTObserved(b *testing.B) {
	g := benchGateway(b, observed(b)...)
	path := "/v1/payments/topups/" + topupToRead(b, g)
	b.ReportAllocs()
	for b.Loop() {
		res, _ := g.Do(b, http.MethodGet, path, "", nil)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
