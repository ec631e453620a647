package metrics_test

import (
	"bufio"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/metrics"
)

// TestNames: every metric docs/metrics.md lists is served, under exactly
// that name, once something was recorded; and a nil *Metrics records
// nothing without failing.
func TestNames(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	m.UpstreamAttempt("CreateWithdrawal", 201, 1, time.Millisecond)
	m.UpstreamAttempt("CreateWithdrawal", 0, 5, time.Millisecond)
	m.UpstreamRetry("CreateWithdrawal", "5xx")
	m.UpstreamOutcomeUnknown("CreateWithdrawal")
	m.TokenRequest("ok")
	m.TokenRefresh("expiry")
	m.Idempotency("replayed")
	m.IdempotencyConflict()
	m.IdempotencyUnavailable()
	m.WebhookDelivery(401, "bad_signature")
	m.WebhookEvents("stored", 3)
	m.Append(time.Millisecond, nil)
	ended := m.StreamOpened("/upvest.gateway.v1.TopupService/WatchTopupEvents")
	ended("client")
	m.StreamLag(time.Millisecond)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()

	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile("^- `((?:upvest_gateway|grpc_server)_[a-z_]+)")
	sc := bufio.NewScanner(strings.NewReader(string(doc)))
	var checked int
	for sc.Scan() {
		mm := name.FindStringSubmatch(sc.Text())
		if mm == nil {
			continue
		}
		n := strings.TrimSuffix(mm[1], "_bucket")
		if strings.HasPrefix(n, "grpc_server_") {
			continue // served once a call has been made; see the server's tests
		}
		checked++
		if !strings.Contains(body, "\n"+n) && !strings.HasPrefix(body, n) {
			t.Errorf("%s is documented but not served", n)
		}
	}
	if checked < 15 {
		t.Fatalf("only %d metric names found in docs/metrics.md", checked)
	}
	if !strings.Contains(body, `upstream_requests_total{attempt="4+",operation="CreateWithdrawal",status="transport_error"} 1`) {
		t.Errorf("attempt labels:\n%s", body)
	}

	var none *metrics.Metrics
	none.UpstreamAttempt("x", 200, 1, 0)
	none.StreamOpened("x")("client")
	none.WebhookDelivery(200, "")
}
