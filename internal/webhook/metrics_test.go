package webhook

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// TestReceiverMetrics: every delivery counts by the status answered, a
// refusal by its reason, and its events by what became of them; every
// append to the log is timed.
func TestReceiverMetrics(t *testing.T) {
	l := openBackend(t, eventstest.Backend{Name: "embedded"})
	s := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	m := metrics.New("test")
	url := newTestReceiver(t, l, newKeySource(s), WithMetrics(m))

	ag := uuid.NewString()
	bad := rawEvent("TOPUP.SETTLED", ag)
	bad["id"] = "not-a-uuid"
	first := rawEvent("TOPUP.CONFIRMED", ag)
	for _, d := range []struct {
		signer *eventstest.WebhookSigner
		body   []byte
		want   int
	}{
		{s, eventstest.DeliveryBody(t, first, rawEvent("TOPUP.SETTLED", ag)), http.StatusOK},
		// Upvest repeating an event already stored: a duplicate.
		{s, eventstest.DeliveryBody(t, first), http.StatusOK},
		{s, eventstest.DeliveryBody(t, rawEvent("TOPUP.CANCELLED", ag), bad), http.StatusOK},
		{nil, eventstest.DeliveryBody(t, rawEvent("TOPUP.CONFIRMED", ag)), http.StatusUnauthorized},
	} {
		if code, body := post(t, url, d.signer, d.body); code != d.want {
			t.Fatalf("delivery answered %d %s, want %d", code, body, d.want)
		}
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`upvest_gateway_webhook_deliveries_total{code="200"} 3`,
		`upvest_gateway_webhook_deliveries_total{code="401"} 1`,
		`upvest_gateway_webhook_rejections_total{reason="bad_signature"} 1`,
		`upvest_gateway_webhook_events_total{result="stored"} 3`,
		`upvest_gateway_webhook_events_total{result="duplicate"} 1`,
		`upvest_gateway_webhook_events_total{result="quarantined"} 1`,
		`upvest_gateway_event_log_append_duration_seconds_count 3`,
		`upvest_gateway_event_log_append_errors_total 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}
