package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	adminv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/admin/v1"
	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// TestWebhookQuarantine: the simulator delivers, in its ordinary batches, a
// malformed event among valid ones. Every delivery is answered 200 on the
// first attempt, so nothing behind it is held back; the valid events
// stream; the malformed one is listed by the EventQuarantineService with its
// reason; re-injecting it as received fails, and re-injecting it fixed
// streams it once however often it is done.
func TestWebhookQuarantine(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		g := start(t, be)
		admin := adminv1.NewEventQuarantineServiceClient(g.Conn)
		ag := uuid.NewString()
		w := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag}))

		bad := map[string]any{
			"id": uuid.NewString(), "created_at": "2026-01-02T10:00:00", "type": "TOPUP.SETTLED", "webhook_id": g.Sim.WebhookID(),
			"object": map[string]any{"id": uuid.NewString(), "account_group_id": ag, "status": "SETTLED", "cash_amount": "5.00", "currency": "EUR"},
		}
		raw, _ := json.Marshal(bad)
		if err := g.Sim.EmitRaw(raw); err != nil {
			t.Fatal(err)
		}
		evs := slices.DeleteFunc(createTopups(t, g, ag, 3), func(e upvestsim.Event) bool { return e.ID == bad["id"] })
		equalIDs(t, "streamed", ids(w.events(t, len(evs))), simIDs(evs))
		w.quiet(t, 200*time.Millisecond)
		for _, d := range g.Sim.Deliveries() {
			if d.Status != http.StatusOK || d.Attempt != 1 {
				t.Errorf("delivery %+v: want every delivery accepted on its first attempt", d)
			}
		}

		list, err := admin.ListQuarantinedEvents(ctxT(t), &adminv1.ListQuarantinedEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(list.GetQuarantinedEvents()); n != 1 {
			t.Fatalf("%d quarantined, want 1: %v", n, list)
		}
		rec := list.GetQuarantinedEvents()[0]
		if rec.GetEventId() != bad["id"] || rec.GetEventType() != "TOPUP.SETTLED" || rec.GetWebhookId() != g.Sim.WebhookID() ||
			!strings.HasSuffix(rec.GetReason(), "created_at: not an RFC 3339 date-time") || rec.GetRaw() != nil || rec.GetKeyId() != g.Sim.WebhookKeyID() {
			t.Fatalf("record %v", rec)
		}
		got, err := admin.GetQuarantinedEvent(ctxT(t), &adminv1.GetQuarantinedEventRequest{Id: rec.GetId()})
		if err != nil || string(got.GetQuarantinedEvent().GetRaw()) != string(raw) {
			t.Fatalf("Get: %v, %v; want the raw bytes as delivered", got, err)
		}

		_, err = admin.ReinjectQuarantinedEvent(ctxT(t), &adminv1.ReinjectQuarantinedEventRequest{Id: rec.GetId()})
		wantStatus(t, err, codes.FailedPrecondition, "EVENT_STILL_INVALID")
		_, err = admin.ReinjectQuarantinedEvent(ctxT(t), &adminv1.ReinjectQuarantinedEventRequest{Id: rec.GetId(), Event: []byte(`{"id":"x"}`)})
		if st := wantStatus(t, err, codes.InvalidArgument, "INVALID_EVENT"); !strings.Contains(st.String(), "event.id") {
			t.Errorf("invalid corrected event: %v, want the field named", st)
		}

		bad["created_at"] = "2026-01-02T10:00:00Z"
		fixed, _ := json.Marshal(bad)
		for range 2 {
			resp, err := admin.ReinjectQuarantinedEvent(ctxT(t), &adminv1.ReinjectQuarantinedEventRequest{Id: rec.GetId(), Event: fixed})
			if err != nil || resp.GetEventId() != bad["id"] || resp.GetEventType() != "TOPUP.SETTLED" {
				t.Fatalf("Reinject fixed: %v, %v", resp, err)
			}
		}
		equalIDs(t, "re-injected", ids(w.events(t, 1)), []string{bad["id"].(string)})
		w.quiet(t, 300*time.Millisecond)
		got, err = admin.GetQuarantinedEvent(ctxT(t), &adminv1.GetQuarantinedEventRequest{Id: rec.GetId()})
		if err != nil || got.GetQuarantinedEvent().GetReinjectedAt() == nil || got.GetQuarantinedEvent().GetReinjectedEventId() != bad["id"] {
			t.Fatalf("after re-injection: %v, %v", got, err)
		}

		_, err = admin.GetQuarantinedEvent(ctxT(t), &adminv1.GetQuarantinedEventRequest{Id: strings.Repeat("0", 32)})
		wantStatus(t, err, codes.NotFound, "NOT_QUARANTINED")
		_, err = admin.GetQuarantinedEvent(ctxT(t), &adminv1.GetQuarantinedEventRequest{Id: "nope"})
		wantStatus(t, err, codes.InvalidArgument, "")
		_, err = admin.ListQuarantinedEvents(ctxT(t), &adminv1.ListQuarantinedEventsRequest{PageToken: "!!", PageSize: 5000})
		wantStatus(t, err, codes.InvalidArgument, "")
	})
}

// TestQuarantinePaging: pages follow each other without gaps or repeats.
func TestQuarantinePaging(t *testing.T) {
	g := start(t, eventstest.Backend{Name: "embedded"})
	admin := adminv1.NewEventQuarantineServiceClient(g.Conn)
	var want []string
	for i := range 5 {
		raw := []byte(`{"id":"` + strings.Repeat("x", i+1) + `"}`)
		if code, err := g.Sim.SendDelivery(ctxT(t), g.BaseURL+server.WebhookPath, []byte(`{"payload":[`+string(raw)+`]}`)); err != nil || code != http.StatusOK {
			t.Fatalf("delivery: %d %v", code, err)
		}
		want = append(want, strings.Repeat("x", i+1))
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		resp, err := admin.ListQuarantinedEvents(ctxT(t), &adminv1.ListQuarantinedEventsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetQuarantinedEvents() {
			got = append(got, r.GetEventId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if pages > 5 {
			t.Fatal("too many pages")
		}
	}
	equalIDs(t, "listed", got, want)
}

// TestWebhookTenantBinding: another tenant's delivery, signed by Upvest's
// key (the simulator's), is refused with 403 and stores nothing, whether it
// names a webhook subscription that is not ours or its signature covers
// another upvest-client-id; the simulator's own deliveries for our
// subscription (learnt after start-up, as subscription management will)
// go on streaming.
func TestWebhookTenantBinding(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		subs, _ := webhook.NewSubscriptions()
		g := start(t, be, servertest.WithReceiverOptions(webhook.WithSubscriptions(subs)))
		clientID := g.ClientID // the receiver is bound to it, as the gateway is to UPVEST_CLIENT_ID
		if err := subs.Add(g.Sim.WebhookID()); err != nil {
			t.Fatal(err)
		}
		ag := uuid.NewString()
		w := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag}))
		event := func(webhookID string) []byte {
			return eventstest.DeliveryBody(t, map[string]any{
				"id": uuid.NewString(), "created_at": time.Now().UTC().Format(time.RFC3339Nano), "type": "TOPUP.SETTLED", "webhook_id": webhookID,
				"object": map[string]any{"id": uuid.NewString(), "account_group_id": ag, "status": "SETTLED", "cash_amount": "5.00", "currency": "EUR"},
			})
		}
		url := g.BaseURL + server.WebhookPath
		for name, send := range map[string]func() (int, error){
			"another tenant's subscription": func() (int, error) { return g.Sim.SendDelivery(ctxT(t), url, event(uuid.NewString())) },
			"another tenant's client id": func() (int, error) {
				return g.Sim.SendDelivery(ctxT(t), url, event(g.Sim.WebhookID()), upvestsim.ForClient(uuid.NewString()))
			},
		} {
			if code, err := send(); err != nil || code != http.StatusForbidden {
				t.Errorf("%s: %d %v, want 403", name, code, err)
			}
		}
		w.quiet(t, 200*time.Millisecond)
		if list, err := adminv1.NewEventQuarantineServiceClient(g.Conn).ListQuarantinedEvents(ctxT(t), &adminv1.ListQuarantinedEventsRequest{}); err != nil || len(list.GetQuarantinedEvents()) != 0 {
			t.Fatalf("quarantine after foreign deliveries: %v, %v", list, err)
		}

		// Ours: the simulator's deliveries, and one re-sent with an old
		// signature (older than the 5.5 minutes once allowed) and our
		// client id covered.
		ours := event(g.Sim.WebhookID())
		if code, err := g.Sim.SendDelivery(ctxT(t), url, ours, upvestsim.ForClient(clientID), upvestsim.SignedAt(time.Now().Add(-10*time.Minute))); err != nil || code != http.StatusOK {
			t.Fatalf("our delivery with an old signature: %d %v", code, err)
		}
		if code, err := g.Sim.SendDelivery(ctxT(t), url, event(g.Sim.WebhookID()), upvestsim.SignedAt(time.Now().Add(5*time.Minute))); err != nil || code != http.StatusUnauthorized {
			t.Fatalf("a delivery signed in the future: %d %v, want 401", code, err)
		}
		var d struct {
			Payload []struct{ ID string } `json:"payload"`
		}
		json.Unmarshal(ours, &d)
		evs := createTopups(t, g, ag, 2)
		got := ids(w.events(t, 1+len(evs)))
		want := append([]string{d.Payload[0].ID}, simIDs(evs)...)
		slices.Sort(got)
		slices.Sort(want)
		equalIDs(t, "streamed", got, want)
	})
}

// The admin RPCs answer only callers on loopback until caller authorization
// exists; the REST face does not route to them at all.
func TestQuarantineServiceNotOnREST(t *testing.T) {
	g := start(t, eventstest.Backend{Name: "embedded"})
	for _, path := range []string{"/upvest.gateway.admin.v1.EventQuarantineService/ListQuarantinedEvents", "/v1/quarantine"} {
		res, _ := g.Do(t, http.MethodPost, path, "{}", nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", path, res.StatusCode)
		}
	}
}
