package service_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// firstMessage opens a stream and returns its first message or the error
// it ends with before one.
func firstMessage[R any](t *testing.T, open func(context.Context) (grpc.ServerStreamingClient[R], error)) (*R, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	s, err := open(ctx)
	if err != nil {
		return nil, err
	}
	return s.Recv()
}

// TestWatchInvalidArgument: the Watch RPCs check their filters and token
// before subscribing, naming every bad field at once.
func TestWatchInvalidArgument(t *testing.T) {
	g := servertest.Start(t)
	long := strings.Repeat("x", 257)
	topups := func(req *gatewayv1.WatchTopupEventsRequest) func(context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchTopupEventsResponse], error) {
		return func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchTopupEventsResponse], error) {
			return g.Topups().WatchTopupEvents(ctx, req)
		}
	}
	tests := []struct {
		name   string
		open   func() error
		fields []string
	}{
		{"topups: all at once", func() error {
			_, err := firstMessage(t, topups(&gatewayv1.WatchTopupEventsRequest{AccountGroupId: "nope",
				EventTypes: []gatewayv1.TopupEventType{gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_SETTLED, 0, 99}, ResumeToken: long}))
			return err
		}, []string{"account_group_id", "event_types[1]", "event_types[2]", "resume_token"}},
		{"virtual cash: UNSPECIFIED", func() error {
			_, err := firstMessage(t, func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchVirtualCashEventsResponse], error) {
				return g.VirtualCash().WatchVirtualCashEvents(ctx, &gatewayv1.WatchVirtualCashEventsRequest{EventTypes: []gatewayv1.VirtualCashEventType{0}})
			})
			return err
		}, []string{"event_types[0]"}},
		{"payments: bad account group", func() error {
			_, err := firstMessage(t, func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchPaymentEventsResponse], error) {
				return g.Payments().WatchPaymentEvents(ctx, &gatewayv1.WatchPaymentEventsRequest{AccountGroupId: "2a761567-251b-450e-8615"})
			})
			return err
		}, []string{"account_group_id"}},
		{"cash balance: account group required", func() error {
			_, err := firstMessage(t, func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchCashBalanceResponse], error) {
				return g.CashBalance().WatchCashBalance(ctx, &gatewayv1.WatchCashBalanceRequest{ResumeToken: long})
			})
			return err
		}, []string{"account_group_id", "resume_token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := apiRequests(g)
			err := tc.open()
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
			got := outcome{details: status.Convert(err).Details()}.fields()
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("violations %v, want %v", got, tc.fields)
			}
			if n := apiRequests(g); n != before {
				t.Errorf("an invalid request cost %d upstream calls", n-before)
			}
		})
	}
}

// TestWatchUndecodableObject: an event whose object does not decode into
// its resource is still sent, without the typed object, and logged without
// the object's values.
func TestWatchUndecodableObject(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := httpsig.NewSigner(key, "test-kid", httpsig.WithVersion(httpsig.Version6))
	if err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	g := servertest.Start(t, servertest.WithWebhookKeys(map[string]crypto.PublicKey{"test-kid": key.Public()}),
		servertest.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := g.Topups().WatchTopupEvents(ctx, &gatewayv1.WatchTopupEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the first heartbeat
		t.Fatal(err)
	}

	bad := map[string]any{"id": uuid.NewString(), "created_at": "2025-01-02T03:04:05Z", "type": "TOPUP.SETTLED",
		"object": map[string]any{"id": uuid.NewString(), "cash_amount": 98765.4321, "settlement_reference": "SECRET-REF"}}
	good := map[string]any{"id": uuid.NewString(), "created_at": "2025-01-02T03:04:06Z", "type": "TOPUP.SETTLED",
		"object": map[string]any{"id": uuid.NewString(), "cash_amount": "1.00", "status": "SETTLED"}}
	body, _ := json.Marshal(map[string]any{"payload": []any{bad, good}})
	req, _ := http.NewRequest(http.MethodPost, g.BaseURL+server.WebhookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := signer.Sign(req, body); err != nil {
		t.Fatal(err)
	}
	res, err := g.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("delivery: %d", res.StatusCode)
	}

	var got []*gatewayv1.TopupEvent
	for len(got) < 2 {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := m.GetEvent(); e != nil {
			got = append(got, e)
		}
	}
	if e := got[0]; e.GetId() != bad["id"] || e.GetType() != gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_SETTLED || e.GetCreatedAt() == nil || e.GetTopup() != nil {
		t.Errorf("undecodable event = %v, want it sent without its top-up", e)
	}
	if e := got[1]; e.GetId() != good["id"] || e.GetTopup().GetCashAmount() != "1.00" || e.GetTopup().GetStatus() != gatewayv1.TopupStatus_TOPUP_STATUS_SETTLED {
		t.Errorf("the next event = %v", e)
	}
	out := logs.String()
	if !strings.Contains(out, bad["id"].(string)) || !strings.Contains(out, "cash_amount") || strings.Contains(out, "98765") || strings.Contains(out, "SECRET") {
		t.Errorf("log: %s", out)
	}
}
