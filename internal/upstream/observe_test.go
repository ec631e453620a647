package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/upvest-gateway/gateway/internal/metrics"
)

// TestMetrics: attempts by operation, status and number, retries by
// reason, token requests and refreshes by result and reason, and calls
// that ended with their outcome unknown, as the client makes them.
func TestMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	f := newFakeUpstream(t)
	f.with(func() { f.revoked[1] = true }) // the first token is refused once used
	// The API's first request never reaches sequence: it is refused 401
	// for its token.
	f.setAPI(sequence(topupOK, 0, 503, 429))
	c := f.client(t, fastRetry, WithMetrics(m))

	// Attempt 1: 401 with token 1, re-sent with token 2 and answered 503;
	// attempt 2: 429; attempt 3: 200.
	if _, err := c.CreateTopup(testContext(t), CreateTopupRequest{}); err != nil {
		t.Fatal(err)
	}
	// A 500 every time: the outcome of a create stays unknown until the
	// deadline.
	// The caller gives up once three attempts were answered: on a loaded
	// machine a short deadline might allow fewer.
	ctx, cancel := context.WithTimeout(testContext(t), 30*time.Second)
	defer cancel()
	var answered atomic.Int32
	f.setAPI(func(w http.ResponseWriter, _ *http.Request, _ int) {
		problem(w, 500, "test", "")
		if answered.Add(1) >= 3 {
			cancel()
		}
	})
	if _, err := c.CreateTopup(ctx, CreateTopupRequest{}); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("after 500s: %v, want the outcome unknown", err)
	}
	// The token endpoint refuses the credentials.
	f.setTokenFail(func(w http.ResponseWriter, _ int) bool { problem(w, 401, "unauthorized", ""); return true })
	f.with(func() { f.revoked[2] = true })
	if _, err := c.CreateTopup(testContext(t), CreateTopupRequest{}); !errors.Is(err, ErrTokenRequest) {
		t.Fatalf("credentials refused: %v", err)
	}

	text := scrape(t, m)
	for _, want := range []string{
		`upvest_gateway_upstream_requests_total{attempt="1",operation="CreateTopup",status="503"} 1`,
		`upvest_gateway_upstream_requests_total{attempt="2",operation="CreateTopup",status="429"} 1`,
		`upvest_gateway_upstream_requests_total{attempt="3",operation="CreateTopup",status="200"} 1`,
		`upvest_gateway_upstream_requests_total{attempt="1",operation="token",status="200"} 2`,
		`upvest_gateway_upstream_requests_total{attempt="1",operation="token",status="401"} 1`,
		`upvest_gateway_upstream_retries_total{operation="CreateTopup",reason="429"} 1`,
		`upvest_gateway_upstream_outcome_unknown_total{operation="CreateTopup"} 1`,
		`upvest_gateway_upstream_token_requests_total{result="ok"} 2`,
		`upvest_gateway_upstream_token_requests_total{result="refused"} 1`,
		`upvest_gateway_upstream_token_refreshes_total{reason="unauthorized"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	// The first call's 401 and the third's; the 500s, at least one each of
	// the first three attempt numbers, retried for 5xx each time but the last.
	for _, want := range []struct {
		series string
		min    float64
	}{
		{`upvest_gateway_upstream_requests_total{attempt="1",operation="CreateTopup",status="401"}`, 2},
		{`upvest_gateway_upstream_requests_total{attempt="1",operation="CreateTopup",status="500"}`, 1},
		{`upvest_gateway_upstream_retries_total{operation="CreateTopup",reason="5xx"}`, 2},
		{`upvest_gateway_upstream_request_duration_seconds_count{operation="CreateTopup"}`, 7},
	} {
		if v := value(text, want.series); v < want.min {
			t.Errorf("%s = %v, want at least %v", want.series, v, want.min)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// value is the value of series in the exposition text, or -1.
func value(text, series string) float64 {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// TestTracing: a call is a span of its operation, child of the caller's,
// with the idempotency key, the last upvest-request-id and the attempts;
// each HTTP request under it is a client span whose context reaches Upvest
// in traceparent, the token request included.
func TestTracing(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	f := newFakeUpstream(t)
	f.setAPI(sequence(topupOK, 503))
	c := f.client(t, fastRetry, WithTracing(tp, propagation.TraceContext{}))

	ctx, caller := tp.Tracer("test").Start(testContext(t), "caller")
	var info ResponseInfo
	if _, err := c.CreateTopup(ctx, CreateTopupRequest{}, WithResponseInfo(&info)); err != nil {
		t.Fatal(err)
	}
	caller.End()
	traceID := caller.SpanContext().TraceID()

	spans := exp.GetSpans()
	var op *tracetest.SpanStub
	httpSpans := map[trace.SpanID]tracetest.SpanStub{}
	for i, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q is in another trace", s.Name)
		}
		switch {
		case s.Name == "upvest CreateTopup":
			op = &spans[i]
		case strings.HasPrefix(s.Name, "upvest HTTP "):
			httpSpans[s.SpanContext.SpanID()] = s
		}
	}
	if op == nil {
		t.Fatalf("no span of the operation among %d", len(spans))
	}
	if op.Parent.SpanID() != caller.SpanContext().SpanID() {
		t.Error("the operation's span is not the caller's child")
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, a := range op.Attributes {
		attrs[a.Key] = a.Value
	}
	if attrs[AttrIdempotencyKey].AsString() != info.IdempotencyKey || attrs[AttrRequestID].AsString() != info.RequestID ||
		attrs[AttrAttempts].AsInt64() != 2 || info.RequestID == "" {
		t.Errorf("operation span attributes %v, want key %s, request id %s, 2 attempts", attrs, info.IdempotencyKey, info.RequestID)
	}

	reqs := append(f.tokenRequests(), f.apiRequests()...)
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want a token request and 2 attempts", len(reqs))
	}
	for i, r := range reqs {
		tp := r.Header.Get("Traceparent")
		parts := strings.Split(tp, "-")
		if len(parts) != 4 || parts[1] != traceID.String() {
			t.Errorf("request %d (%s): traceparent %q, want trace %s", i, r.Path, tp, traceID)
			continue
		}
		sid, _ := trace.SpanIDFromHex(parts[2])
		s, ok := httpSpans[sid]
		if !ok {
			t.Errorf("request %d (%s): its parent span %s is no HTTP span of the client", i, r.Path, parts[2])
			continue
		}
		if r.Path != "/auth/token" && s.Parent.SpanID() != op.SpanContext.SpanID() {
			t.Errorf("request %d: its HTTP span is not under the operation's", i)
		}
		if r.VerifyErr != nil {
			t.Errorf("request %d: the signature no longer verifies with traceparent added: %v", i, r.VerifyErr)
		}
	}
}
