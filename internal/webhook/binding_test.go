package webhook

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// Another Upvest tenant's delivery, signed with the same Upvest key, is
// refused (403) and stores nothing: its events name a webhook subscription
// that is not ours, or its signature covers an upvest-client-id that is not
// ours.
func TestForeignTenantRefused(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		upvest := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
		ours, theirs := uuid.NewString(), uuid.NewString()
		ourClient, theirClient := uuid.NewString(), uuid.NewString()
		subs, err := NewSubscriptions(strings.ToUpper(ours))
		if err != nil {
			t.Fatal(err)
		}
		url, rc := serveReceiver(t, l, l.quarantine, newKeySource(upvest), WithSubscriptions(subs), WithClientID(ourClient))
		ag := uuid.NewString()
		event := func(webhookID string) map[string]any {
			e := rawEvent("TOPUP.SETTLED", ag)
			if webhookID == "" {
				delete(e, "webhook_id")
			} else {
				e["webhook_id"] = webhookID
			}
			return e
		}
		// withClient sends upvest-client-id, covered by the signature.
		withClient := func(id string, body []byte) *http.Request {
			req := eventstest.NewDelivery(t, url, nil, body)
			req.Header.Set("Upvest-Client-Id", id)
			if err := upvest.Sign(req, body); err != nil {
				t.Fatal(err)
			}
			return req
		}

		refused := []struct {
			name string
			req  *http.Request
		}{
			{"their subscription", eventstest.NewDelivery(t, url, upvest, eventstest.DeliveryBody(t, event(theirs), event(theirs)))},
			{"theirs among ours", eventstest.NewDelivery(t, url, upvest, eventstest.DeliveryBody(t, event(ours), event(theirs)))},
			{"theirs, malformed", eventstest.NewDelivery(t, url, upvest, eventstest.DeliveryBody(t, func() map[string]any {
				e := event(theirs)
				e["created_at"] = "yesterday"
				return e
			}()))},
			{"our subscription, their client id", withClient(theirClient, eventstest.DeliveryBody(t, event(ours)))},
		}
		for _, tt := range refused {
			code, body := do(t, tt.req)
			if code != http.StatusForbidden || !strings.Contains(body, "foreign_delivery") {
				t.Errorf("%s: %d %s, want 403 foreign_delivery", tt.name, code, body)
			}
		}
		if n, q := storedCount(t, l), len(quarantined(t, l)); n != 0 || q != 0 {
			t.Fatalf("foreign deliveries stored %d events and quarantined %d", n, q)
		}
		if got := rc.Stats().Foreign; got != uint64(len(refused)) {
			t.Errorf("Stats().Foreign = %d, want %d", got, len(refused))
		}

		// Ours: stored. An upvest-client-id the signature does not cover
		// binds nothing. An event naming no subscription cannot be bound: it
		// is quarantined, never streamed.
		uncovered := eventstest.NewDelivery(t, url, upvest, eventstest.DeliveryBody(t, event(ours)))
		uncovered.Header.Set("Upvest-Client-Id", theirClient)
		for name, req := range map[string]*http.Request{
			"ours":                           eventstest.NewDelivery(t, url, upvest, eventstest.DeliveryBody(t, event(ours), event(ours))),
			"ours, our client id":            withClient(ourClient, eventstest.DeliveryBody(t, event(ours))),
			"ours, client id not signed":     uncovered,
			"ours and one naming no webhook": eventstest.NewDelivery(t, url, upvest, eventstest.DeliveryBody(t, event(ours), event(""))),
		} {
			if code, body := do(t, req); code != http.StatusOK {
				t.Errorf("%s: %d %s, want 200", name, code, body)
			}
		}
		if n := storedCount(t, l); n != 5 {
			t.Errorf("%d stored, want 5", n)
		}
		recs := quarantined(t, l)
		if len(recs) != 1 || !strings.Contains(recs[0].Reason, "webhook_id") {
			t.Errorf("quarantine %+v, want the event naming no subscription", recs)
		}

		// A subscription the gateway learns of later (the seam for managing
		// subscriptions) is ours from then on.
		if err := subs.Add(theirs); err != nil {
			t.Fatal(err)
		}
		if code, body := post(t, url, upvest, eventstest.DeliveryBody(t, event(theirs))); code != http.StatusOK {
			t.Errorf("after Add: %d %s", code, body)
		}
	})
}

// Without any subscription known, only the client id binds, and only where
// the signature covers it.
func TestClientIDBindingAlone(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	upvest := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ours := uuid.NewString()
	url := newTestReceiver(t, l, newKeySource(upvest), WithClientID(ours))
	body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
	for client, want := range map[string]int{ours: 200, strings.ToUpper(ours): 200, uuid.NewString(): 403} {
		req := eventstest.NewDelivery(t, url, nil, body)
		req.Header.Set("Upvest-Client-Id", client)
		if err := upvest.Sign(req, body); err != nil {
			t.Fatal(err)
		}
		if code, resp := do(t, req); code != want {
			t.Errorf("client id %s: %d %s, want %d", client, code, resp, want)
		}
	}
	// Not covered: any tenant's delivery passes, as the start-up log warns.
	if code, resp := post(t, url, upvest, eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))); code != 200 {
		t.Errorf("delivery without upvest-client-id: %d %s", code, resp)
	}
}

func TestParseWebhookIDs(t *testing.T) {
	a, b := "9df39835-be87-4243-9018-f2500b39cee6", "1b097e06-8a14-4181-b72a-de0972a3c57b"
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{" , ", nil, ""},
		{a, []string{a}, ""},
		{strings.ToUpper(a) + ", " + b + "\n" + a, []string{a, b}, ""},
		{a + ",nope", nil, "entry 2 is not a UUID"},
		{"urn:uuid:" + a, nil, "entry 1 is not a UUID"},
		{"{" + a + "}", nil, "entry 1 is not a UUID"},
	}
	for _, tt := range tests {
		got, err := ParseWebhookIDs(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseWebhookIDs(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ParseWebhookIDs(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseWebhookIDs(strings.Repeat(a+",", maxWebhookIDs+1)); err == nil {
		t.Error("an endless list was accepted")
	}
	if _, err := NewSubscriptions("nope"); err == nil {
		t.Error("NewSubscriptions accepted a non-UUID")
	}
}
