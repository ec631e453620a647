package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// A REST call reaches the services as a gRPC call does, through the same
// interceptors: the method, the caller's headers as incoming metadata (and
// nothing going out), the in-memory peer, and the header the service sets
// back on the REST answer.
func TestRESTUnaryCallsPassTheInterceptors(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, grpcMethod, peerNetwork, note string
		outgoing                              int
	}
	var (
		mu    sync.Mutex
		calls []seen
	)
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		s := seen{method: info.FullMethod}
		s.grpcMethod, _ = grpc.Method(ctx)
		if p, ok := peer.FromContext(ctx); ok {
			s.peerNetwork = p.Addr.Network()
		}
		if v := metadata.ValueFromIncomingContext(ctx, "note"); len(v) == 1 {
			s.note = v[0]
		}
		out, _ := metadata.FromOutgoingContext(ctx)
		s.outgoing = len(out)
		mu.Lock()
		calls = append(calls, s)
		mu.Unlock()
		return handler(ctx, req)
	}
	g := servertest.Start(t, servertest.WithoutEvents(), servertest.WithServerOptions(server.WithUnaryInterceptors(record)))

	req := topupRequest(uuid.NewString())
	body, _ := json.Marshal(map[string]string{"request_id": req.RequestId, "account_group_id": req.AccountGroupId, "cash_amount": "10.00", "currency": "EUR"})
	res, b := g.Do(t, http.MethodPost, "/v1/payments/topups", string(body), http.Header{"Grpc-Metadata-Note": {"hello"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("REST create: %d %s", res.StatusCode, b)
	}
	if res.Header.Get(server.HeaderIdempotencyKey) != req.RequestId || res.Header.Get(server.HeaderUpvestRequestID) == "" {
		t.Errorf("answer headers %v: want the idempotency key and the upvest-request-id the service set", res.Header)
	}
	var created struct {
		Topup struct{ ID string } `json:"topup"`
	}
	if err := json.Unmarshal(b, &created); err != nil || created.Topup.ID == "" {
		t.Fatalf("REST create answered %s", b)
	}
	if res, b := g.Do(t, http.MethodGet, "/v1/payments/topups/"+created.Topup.ID, "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("REST get: %d %s", res.StatusCode, b)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []seen{
		{method: "/upvest.gateway.v1.TopupService/CreateTopup", grpcMethod: "/upvest.gateway.v1.TopupService/CreateTopup", peerNetwork: "bufconn", note: "hello"},
		{method: "/upvest.gateway.v1.TopupService/GetTopup", grpcMethod: "/upvest.gateway.v1.TopupService/GetTopup", peerNetwork: "bufconn"},
	}
	if len(calls) != len(want) {
		t.Fatalf("the interceptor saw %+v, want %+v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d: the interceptor saw %+v, want %+v", i, calls[i], want[i])
		}
	}
}
