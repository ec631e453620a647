package webhook

import (
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// An external NATS that goes away and comes back: deliveries get 503 while it
// is gone and are stored exactly once when Upvest retries them; a subscriber
// connected throughout misses nothing and sees nothing twice.
func TestExternalOutage(t *testing.T) {
	raw := os.Getenv("GATEWAY_NATS_URL")
	if raw == "" {
		t.Skip("GATEWAY_NATS_URL not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := eventstest.NewTCPProxy(t, u.Host)
	be := eventstest.Backend{Name: "external", URL: raw}
	cfg := backendConfig(t, be)
	cfg.broker.URL = p.URL()
	l := openLog(t, cfg)

	signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	endpoint := newTestReceiver(t, l, newKeySource(signer), WithAppendTimeout(time.Second))
	ag := uuid.NewString()
	s := startWatch(t, l, events.Filter{AccountGroupID: ag})

	d1 := []map[string]any{rawEvent("TOPUP.CONFIRMED", ag), rawEvent("CASH_BALANCE.UPDATED", ag)}
	d2 := []map[string]any{rawEvent("TOPUP.SETTLED", ag), rawEvent("CASH_BALANCE.UPDATED", ag)}
	if code, resp := post(t, endpoint, signer, eventstest.DeliveryBody(t, d1...)); code != http.StatusOK {
		t.Fatalf("before the outage: %d %s", code, resp)
	}

	p.SetDown(true)
	if code, resp := post(t, endpoint, signer, eventstest.DeliveryBody(t, d2...)); code != http.StatusServiceUnavailable {
		t.Fatalf("during the outage: %d %s, want 503", code, resp)
	}
	p.SetDown(false)

	// Upvest retries with backoff until the gateway answers 200.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, resp := post(t, endpoint, signer, eventstest.DeliveryBody(t, d2...))
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the outage: %d %s", code, resp)
		}
		time.Sleep(200 * time.Millisecond)
	}

	var want []string
	for _, e := range append(d1, d2...) {
		want = append(want, e["id"].(string))
	}
	equalIDs(t, msgIDs(s.events(t, 4)), want)
	s.quiet(t, 500*time.Millisecond)
}
