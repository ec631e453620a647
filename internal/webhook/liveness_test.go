package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// One bad event must never stop the stream: a correctly signed delivery
// mixing valid and malformed events is answered 200, the valid ones stream,
// the malformed ones are in the quarantine with their reason, and the next
// delivery goes through. Re-injecting a fixed event streams it once.
func TestDeliveryWithMalformedEvents(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
		url := newTestReceiver(t, l, newKeySource(signer))
		ag := uuid.NewString()
		s := startWatch(t, l, events.Filter{AccountGroupID: ag})

		emptyGroup := rawEvent("CASH_BALANCE.UPDATED", ag)
		emptyGroup["object"].(map[string]any)["account_group_id"] = ""
		noOffset := rawEvent("TOPUP.SETTLED", ag)
		noOffset["created_at"] = "2026-01-02T10:00:00"
		badWebhook := rawEvent("TOPUP.SETTLED", ag)
		badWebhook["webhook_id"] = "not-a-uuid"
		v1, v2, v3 := rawEvent("TOPUP.CONFIRMED", ag), rawEvent("CASH_BALANCE.UPDATED", ag), rawEvent("TOPUP.SETTLED", ag)
		body := eventstest.DeliveryBody(t, v1, emptyGroup, v2, noOffset, badWebhook, v3)

		for range 2 { // Upvest's retry changes nothing
			if code, resp := post(t, url, signer, body); code != http.StatusOK {
				t.Fatalf("mixed delivery: %d %s, want 200", code, resp)
			}
		}
		equalIDs(t, msgIDs(s.events(t, 3)), []string{v1["id"].(string), v2["id"].(string), v3["id"].(string)})

		recs := quarantined(t, l)
		want := []struct {
			index  int
			event  map[string]any
			reason string
		}{
			{1, emptyGroup, "payload[1].object.account_group_id: not a UUID"},
			{3, noOffset, "payload[3].created_at: not an RFC 3339 date-time"},
			{4, badWebhook, "payload[4].webhook_id: not a UUID"},
		}
		if len(recs) != len(want) {
			t.Fatalf("%d quarantined, want %d: %+v", len(recs), len(want), recs)
		}
		for i, w := range want {
			r := recs[i]
			if r.Index != w.index || r.Reason != w.reason || r.EventID != w.event["id"] || r.KeyID != "kid-1" {
				t.Errorf("record %d = %+v, want index %d, reason %q", i, r, w.index, w.reason)
			}
			full, err := l.quarantine.Get(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(full.Raw, &got); err != nil || got["id"] != w.event["id"] {
				t.Errorf("record %d raw bytes %s, want the event as delivered", i, full.Raw)
			}
		}

		// The next delivery is not held back.
		later := rawEvent("TOPUP.CANCELLED", ag)
		if code, resp := post(t, url, signer, eventstest.DeliveryBody(t, later)); code != http.StatusOK {
			t.Fatalf("later delivery: %d %s", code, resp)
		}
		equalIDs(t, msgIDs(s.events(t, 1)), []string{later["id"].(string)})

		// After a fix, re-injecting streams the event, once.
		noOffset["created_at"] = "2026-01-02T10:00:00Z"
		fixed, _ := json.Marshal(noOffset)
		for range 2 {
			if _, err := l.quarantine.Reinject(context.Background(), l.Log, recs[1].ID, fixed); err != nil {
				t.Fatalf("Reinject: %v", err)
			}
		}
		equalIDs(t, msgIDs(s.events(t, 1)), []string{noOffset["id"].(string)})
		s.quiet(t, 300*time.Millisecond)
	})
}

// A correctly signed body that is not a delivery at all is kept whole in the
// quarantine and answered 200: refusing it would stall every later delivery.
func TestDeliveryNotADelivery(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	url := newTestReceiver(t, l, newKeySource(signer))
	bodies := map[string]string{
		`{"payload":[{`:    "body is not a JSON object",
		`{"events":[]}`:    "payload: missing or not an array",
		`{"payload":{}}`:   "payload: missing or not an array",
		`[1,2,3]`:          "body is not a JSON object",
		`{"payload":null}`: "payload: missing or not an array",
	}
	for body := range bodies {
		if code, resp := post(t, url, signer, []byte(body)); code != http.StatusOK {
			t.Fatalf("%s: %d %s, want 200", body, code, resp)
		}
	}
	recs := quarantined(t, l)
	if len(recs) != len(bodies) {
		t.Fatalf("%d quarantined, want %d", len(recs), len(bodies))
	}
	for _, r := range recs {
		full, err := l.quarantine.Get(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := bodies[string(full.Raw)]; !ok || r.Index != -1 || r.Reason != want {
			t.Errorf("record %+v of body %s, want index -1 and reason %q", r, full.Raw, want)
		}
	}
	if n := storedCount(t, l); n != 0 {
		t.Fatalf("%d events stored", n)
	}
	// An empty payload (Upvest's test delivery) stores and keeps nothing.
	if code, resp := post(t, url, signer, []byte(`{"payload":[]}`)); code != http.StatusOK {
		t.Fatalf("empty payload: %d %s", code, resp)
	}
}

// An event too large for one NATS message is a permanent failure: it is
// quarantined (whole, in chunks) and the delivery answered 200, where the
// log's "maximum payload exceeded" used to be a 503 retried forever.
func TestDeliveryEventTooLargeForTheLog(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
		url := newTestReceiver(t, l, newKeySource(signer))
		ag := uuid.NewString()
		s := startWatch(t, l, events.Filter{AccountGroupID: ag})

		huge := rawEvent("TOPUP.SETTLED", ag)
		huge["object"].(map[string]any)["note"] = strings.Repeat("x", int(l.broker.Conn().MaxPayload())-200)
		small := rawEvent("TOPUP.SETTLED", ag)
		body := eventstest.DeliveryBody(t, huge, small)
		if code, resp := post(t, url, signer, body); code != http.StatusOK {
			t.Fatalf("delivery: %d %s, want 200", code, resp)
		}
		equalIDs(t, msgIDs(s.events(t, 1)), []string{small["id"].(string)})
		recs := quarantined(t, l)
		if len(recs) != 1 || recs[0].Index != 0 || !strings.Contains(recs[0].Reason, "too large for the event log") {
			t.Fatalf("quarantine %+v, want the large event", recs)
		}
		full, err := l.quarantine.Get(context.Background(), recs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		raws, _ := parseEnvelope(body)
		if !bytes.Equal(full.Raw, raws[0]) {
			t.Fatalf("quarantined %d bytes, want the %d of the event as delivered", len(full.Raw), len(raws[0]))
		}
	})
}

// tooLargeLog refuses some events as NATS does a message above its max
// payload: a plain error, naming no event.
type tooLargeLog struct {
	log    *testLog
	refuse map[string]bool
}

func (f *tooLargeLog) Append(ctx context.Context, evs []events.Event) error {
	for _, e := range evs {
		if f.refuse[e.ID] {
			return fmt.Errorf("%w: publishing event: %w", events.ErrUnavailable, nats.ErrMaxPayload)
		}
	}
	return f.log.Append(ctx, evs)
}

// "Maximum payload exceeded" from NATS, should it still happen (a server
// whose limit is lower than the connection was told), is permanent too:
// the receiver finds the event it concerns and quarantines it.
func TestDeliveryMaxPayloadFromNATSIsPermanent(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ag := uuid.NewString()
	a, b, c := rawEvent("TOPUP.SETTLED", ag), rawEvent("TOPUP.SETTLED", ag), rawEvent("TOPUP.SETTLED", ag)
	app := &tooLargeLog{log: l, refuse: map[string]bool{b["id"].(string): true}}
	url := newTestReceiverOn(t, app, l.quarantine, newKeySource(signer))
	if code, resp := post(t, url, signer, eventstest.DeliveryBody(t, a, b, c)); code != http.StatusOK {
		t.Fatalf("delivery: %d %s, want 200", code, resp)
	}
	if n := storedCount(t, l); n != 2 {
		t.Fatalf("%d stored, want 2", n)
	}
	recs := quarantined(t, l)
	if len(recs) != 1 || recs[0].EventID != b["id"] || recs[0].Index != 1 {
		t.Fatalf("quarantine %+v, want payload[1]", recs)
	}
}

// A log or quarantine that cannot be reached is the one thing besides a bad
// signature that makes Upvest retry: 503.
func TestDeliveryQuarantineUnavailable(t *testing.T) {
	cfg := backendConfig(t, eventstest.Backends()[0])
	l := openLog(t, cfg)
	other := openLog(t, backendConfig(t, eventstest.Backends()[0]))
	signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	// The quarantine of a broker that is gone, beside a working log.
	url := newTestReceiverOn(t, l, other.quarantine, newKeySource(signer), WithAppendTimeout(time.Second))
	other.close()
	bad := rawEvent("TOPUP.SETTLED", "")
	bad["id"] = "x"
	good := rawEvent("TOPUP.SETTLED", "")
	if code, resp := post(t, url, signer, eventstest.DeliveryBody(t, good, bad)); code != http.StatusServiceUnavailable {
		t.Fatalf("delivery: %d %s, want 503", code, resp)
	}
}

// Signature freshness: a signature older than the old 5.5 minute window is
// accepted (Upvest re-sends a delivery with its original signature after an
// outage), up to the configured maximum age; created in the future beyond
// the clock skew is refused.
func TestSignatureAge(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	byDefault := newTestReceiver(t, l, newKeySource(signer))
	hourly := newTestReceiver(t, l, newKeySource(signer), WithMaxSignatureAge(time.Hour))
	tests := []struct {
		name string
		url  string
		at   time.Duration // signed at now + at
		want int
	}{
		{"10 minutes old", byDefault, -10 * time.Minute, 200},
		{"6 hours old", byDefault, -6 * time.Hour, 200},
		{"just within the default", byDefault, -DefaultMaxSignatureAge + time.Minute, 200},
		{"beyond the default", byDefault, -DefaultMaxSignatureAge - time.Hour, 401},
		{"50 minutes old, 1 h allowed", hourly, -50 * time.Minute, 200},
		{"2 hours old, 1 h allowed", hourly, -2 * time.Hour, 401},
		{"in the future within the skew", byDefault, MaxClockSkew / 2, 200},
		{"in the future beyond the skew", byDefault, MaxClockSkew + time.Minute, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSignerAt(t, signer, time.Now().Add(tt.at))
			code, resp := post(t, tt.url, s, eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", "")))
			if code != tt.want {
				t.Fatalf("status %d %s, want %d", code, resp, tt.want)
			}
		})
	}
}
