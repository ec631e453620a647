package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
)

// What one SSE event costs the gateway, with and without the in-memory
// gRPC hop that REST streams take (so that they pass the interceptors).
// "direct" is what serving SSE straight from the service would cost per
// event: JSON and framing only. "hop" adds what the hop adds per event:
// proto encoding, HTTP/2 framing over bufconn, proto decoding. The
// event log, filtering and the socket write are the same either way and
// are left out. BENCHMARKS.md has the numbers and the decision.

func benchEvent() *gatewayv1.WatchTopupEventsResponse {
	now := timestamppb.New(time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC))
	return &gatewayv1.WatchTopupEventsResponse{
		ResumeToken: "AiSe8vGkE3bFvX0Ubuq5Q2gAAAAAAAAAAQ",
		Kind: &gatewayv1.WatchTopupEventsResponse_Event{Event: &gatewayv1.TopupEvent{
			Id: uuid.NewString(), CreatedAt: now, Type: gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_CONFIRMED, WebhookId: uuid.NewString(),
			Topup: &gatewayv1.Topup{Id: uuid.NewString(), CreatedAt: now, AccountGroupId: uuid.NewString(), CashAmount: "100.00",
				Currency: "EUR", Status: gatewayv1.TopupStatus_TOPUP_STATUS_CONFIRMED, SettlementReference: uuid.NewString()},
		}},
	}
}

var benchMarshaler = &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}}

// writeSSE is the per-event work both paths share.
func writeSSE(b *testing.B, m proto.Message) {
	data, err := benchMarshaler.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	token, kind := streamFields(m)
	if err := (eventStream{}).message(io.Discard, token, kind, data); err != nil {
		b.Fatal(err)
	}
}

// benchTopups streams b.N copies of one event.
type benchTopups struct {
	gatewayv1.UnimplementedTopupServiceServer
	n   int
	msg *gatewayv1.WatchTopupEventsResponse
}

func (s *benchTopups) WatchTopupEvents(_ *gatewayv1.WatchTopupEventsRequest, stream grpc.ServerStreamingServer[gatewayv1.WatchTopupEventsResponse]) error {
	for range s.n {
		if err := stream.Send(s.msg); err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkSSEEvent(b *testing.B) {
	msg := benchEvent()
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeSSE(b, msg)
		}
	})
	b.Run("hop", func(b *testing.B) {
		lis := bufconn.Listen(bufconnSize)
		srv := grpc.NewServer()
		svc := &benchTopups{n: b.N, msg: msg}
		gatewayv1.RegisterTopupServiceServer(srv, svc)
		go func() { _ = srv.Serve(lis) }()
		defer srv.Stop()
		conn, err := grpc.NewClient("passthrough:///bench",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		stream, err := gatewayv1.NewTopupServiceClient(conn).WatchTopupEvents(context.Background(), &gatewayv1.WatchTopupEventsRequest{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			m, err := stream.Recv()
			if err != nil {
				b.Fatal(err)
			}
			writeSSE(b, m)
		}
	})
}
