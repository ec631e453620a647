package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

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
	m.StreamLag()(time.Millisecond)

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

// TestGRPCSeries: the gRPC server's series exist per method at zero once
// initialized, and count calls by type and code, context errors as the
// codes gRPC answers them with, and stream messages.
func TestGRPCSeries(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	m.InitializeGRPC(s)

	unary := m.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
	for _, err := range []error{nil, status.Error(codes.NotFound, "no"), context.Canceled, fmt.Errorf("wrapped: %w", context.DeadlineExceeded), errors.New("plain")} {
		_, _ = unary(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, err })
	}
	watch := m.RPCStarted("/grpc.health.v1.Health/Watch", false, true)
	watch.Received()
	for range 3 {
		watch.Sent()
	}
	watch.Handled(status.Error(codes.Unavailable, "draining"), time.Second)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	const check = `grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"`
	const stream = `grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"`
	for _, want := range []string{
		`grpc_server_started_total{grpc_method="List",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 0`,
		`grpc_server_handled_total{grpc_code="PermissionDenied",grpc_method="List",grpc_service="grpc.health.v1.Health",grpc_type="unary"} 0`,
		`grpc_server_started_total{` + check + `} 5`,
		`grpc_server_msg_received_total{` + check + `} 5`,
		`grpc_server_msg_sent_total{` + check + `} 1`,
		`grpc_server_handled_total{grpc_code="OK",` + check + `} 1`,
		`grpc_server_handled_total{grpc_code="NotFound",` + check + `} 1`,
		`grpc_server_handled_total{grpc_code="Canceled",` + check + `} 1`,
		`grpc_server_handled_total{grpc_code="DeadlineExceeded",` + check + `} 1`,
		`grpc_server_handled_total{grpc_code="Unknown",` + check + `} 1`,
		`grpc_server_handling_seconds_count{` + check + `} 5`,
		`grpc_server_started_total{` + stream + `} 1`,
		`grpc_server_msg_received_total{` + stream + `} 1`,
		`grpc_server_msg_sent_total{` + stream + `} 3`,
		`grpc_server_handled_total{grpc_code="Unavailable",` + stream + `} 1`,
		`grpc_server_handling_seconds_sum{` + stream + `} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}

	var none *metrics.Metrics
	none.InitializeGRPC(s)
	none.RPCStarted("/x/y", false, true).Sent()
	if _, err := none.UnaryServerInterceptor()(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
}
