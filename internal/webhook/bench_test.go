package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// BenchmarkReceiver measures signed deliveries through HTTP, verification
// (P-521, v6) and the embedded log.
func BenchmarkReceiver(b *testing.B) {
	l := openLog(b, logSetup{broker: broker.Config{DataDir: b.TempDir()}})
	s := eventstest.NewWebhookSigner(b, "kid-1", httpsig.Version6)
	srv := httptest.NewServer(NewReceiver(l, l.quarantine, newKeySource(s).fetch, WithRateLimits(RateLimits{PerSource: 1e6, SourceBurst: 1e6, Global: 1e6, GlobalBurst: 1e6})))
	defer srv.Close()
	const batch = 10
	bodies := make([][]byte, b.N)
	for i := range bodies {
		raws := make([]map[string]any, batch)
		for j := range raws {
			raws[j] = rawEvent("TOPUP.SETTLED", "2a761567-251b-450e-8615-025d61dcc95e")
		}
		bodies[i] = eventstest.DeliveryBody(b, raws...)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		if err := s.Sign(req, bodies[i]); err != nil {
			b.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
