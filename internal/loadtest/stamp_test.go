package loadtest

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
)

func TestEventStamp(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 12, 1, 7, 30, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		m    *gatewayv1.WatchTopupEventsResponse
	}{
		{"event", &gatewayv1.WatchTopupEventsResponse{ResumeToken: "t1", Kind: &gatewayv1.WatchTopupEventsResponse_Event{Event: &gatewayv1.TopupEvent{
			Id: "e1", CreatedAt: timestamppb.New(created), Type: gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_SETTLED, WebhookId: "w1",
			Topup: &gatewayv1.Topup{Id: "t", AccountGroupId: "g", CashAmount: "10.00", Currency: "EUR"},
		}}}},
		{"event before 1970", &gatewayv1.WatchTopupEventsResponse{Kind: &gatewayv1.WatchTopupEventsResponse_Event{Event: &gatewayv1.TopupEvent{
			CreatedAt: timestamppb.New(time.Date(1969, 7, 20, 20, 17, 40, 5, time.UTC)),
		}}}},
		{"event without created_at", &gatewayv1.WatchTopupEventsResponse{Kind: &gatewayv1.WatchTopupEventsResponse_Event{Event: &gatewayv1.TopupEvent{Id: "e2"}}}},
		{"heartbeat", &gatewayv1.WatchTopupEventsResponse{ResumeToken: "t2", Kind: &gatewayv1.WatchTopupEventsResponse_Heartbeat{Heartbeat: &gatewayv1.Heartbeat{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := proto.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			checkStamp(t, b)
		})
	}
}

// checkStamp decodes b both ways and requires the same answer.
func checkStamp(t *testing.T, b []byte) {
	t.Helper()
	var want gatewayv1.WatchTopupEventsResponse
	wantErr := proto.Unmarshal(b, &want)
	var got eventStamp
	err := got.unmarshal(b)
	if wantErr != nil {
		return // what the full decoder refuses may be read or refused
	}
	if err != nil {
		t.Fatalf("unmarshal(%x): %v; the protobuf decoder reads it", b, err)
	}
	ev := want.GetEvent()
	if got.event != (ev != nil) {
		t.Fatalf("unmarshal(%x): event %v, want %v", b, got.event, ev != nil)
	}
	if ev != nil && !got.created.Equal(ev.GetCreatedAt().AsTime()) {
		t.Fatalf("unmarshal(%x): created %v, want %v", b, got.created, ev.GetCreatedAt().AsTime())
	}
}

func FuzzEventStamp(f *testing.F) {
	for _, m := range []*gatewayv1.WatchTopupEventsResponse{
		{ResumeToken: "t", Kind: &gatewayv1.WatchTopupEventsResponse_Event{Event: &gatewayv1.TopupEvent{Id: "e", CreatedAt: timestamppb.Now()}}},
		{Kind: &gatewayv1.WatchTopupEventsResponse_Heartbeat{Heartbeat: &gatewayv1.Heartbeat{}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(checkStamp)
}
