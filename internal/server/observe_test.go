package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/tracing"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// scrape reads the admin listener's /metrics.
func scrape(t *testing.T, g *servertest.Gateway) string {
	t.Helper()
	res, err := g.HTTP.Get(g.AdminBaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	return string(b)
}

// sum adds up the series of metric name whose labels contain every one of
// labels (e.g. `grpc_method="CreateTopup"`).
func sum(text, name string, labels ...string) float64 {
	var total float64
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		var series, value string
		switch {
		case !ok:
			continue
		case strings.HasPrefix(rest, "{"):
			i := strings.LastIndex(rest, "} ")
			if i < 0 {
				continue
			}
			series, value = rest[:i+1], rest[i+2:]
		case strings.HasPrefix(rest, " "):
			value = rest[1:]
		default:
			continue // another metric whose name starts with name
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil && match {
			total += v
		}
	}
	return total
}

// TestMetricsScrape: after real calls over gRPC and REST, a stream and the
// simulator's webhook deliveries (and a forged one), the admin listener's
// /metrics shows each series moved: gRPC server calls per method and code,
// open streams, upstream attempts and tokens, the idempotency store,
// webhook deliveries and events.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	m := metrics.New("test-version")
	g := start(t, eventstest.Backend{Name: "embedded"}, servertest.WithMetrics(m))
	ctx := ctxT(t)
	ag := uuid.NewString()

	before := scrape(t, g)
	if sum(before, "grpc_server_handled_total", `grpc_method="CreateTopup"`) != 0 ||
		!strings.Contains(before, `grpc_server_started_total{grpc_method="CreateTopup",grpc_service="upvest.gateway.v1.TopupService",grpc_type="unary"} 0`) {
		t.Errorf("the gRPC series are not there from the start, at zero")
	}
	if !strings.Contains(before, `upvest_gateway_build_info{go_version="`) || !strings.Contains(before, `version="test-version"`) {
		t.Error("no build_info")
	}

	w := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag}))
	watchMethod := `method="/upvest.gateway.v1.TopupService/WatchTopupEvents"`
	if v := sum(scrape(t, g), "upvest_gateway_streams_active", watchMethod); v != 1 {
		t.Errorf("streams_active with a stream open = %v, want 1", v)
	}

	req := topupRequest(ag)
	created, err := g.Topups().CreateTopup(ctx, req) // over gRPC: ran
	if err != nil {
		t.Fatal(err)
	}
	// The same create over REST: replayed from the store.
	body, _ := json.Marshal(map[string]string{"request_id": req.RequestId, "account_group_id": ag, "cash_amount": req.CashAmount, "currency": req.Currency})
	if res, b := g.Do(t, http.MethodPost, "/v1/payments/topups", string(body), nil); res.StatusCode != http.StatusOK {
		t.Fatalf("REST create: %d %s", res.StatusCode, b)
	}
	if res, b := g.Do(t, http.MethodGet, "/v1/payments/topups/"+created.GetTopup().GetId(), "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("REST get: %d %s", res.StatusCode, b)
	}
	if res, _ := g.Do(t, http.MethodGet, "/v1/payments/topups/"+uuid.NewString(), "", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("REST get of an unknown top-up: %d", res.StatusCode)
	}
	checkTopupEvent(t, w.events(t, 1)[0], created.GetTopup().GetId(), "TOPUP_EVENT_TYPE_CONFIRMED") // a webhook delivery
	unsigned := eventstest.DeliveryBody(t, eventstest.RawEvent("TOPUP.SETTLED", created.GetTopup().GetCreatedAt().AsTime(), map[string]any{"id": uuid.NewString()}))
	if code, _ := deliver(t, g, nil, unsigned, nil); code != http.StatusUnauthorized {
		t.Fatalf("an unsigned delivery answered %d", code)
	}
	w.stop()
	waitFor(t, 10*time.Second, "the stream's end counted", func() bool {
		return sum(scrape(t, g), "upvest_gateway_streams_ended_total", watchMethod, `reason="client"`) == 1
	})

	text := scrape(t, g)
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"grpc_server_handled_total", []string{`grpc_method="CreateTopup"`, `grpc_code="OK"`}, 2}, // gRPC and REST alike
		{"grpc_server_handled_total", []string{`grpc_method="GetTopup"`, `grpc_code="OK"`}, 1},
		{"grpc_server_handled_total", []string{`grpc_method="GetTopup"`, `grpc_code="NotFound"`}, 1},
		{"grpc_server_handling_seconds_count", []string{`grpc_method="CreateTopup"`}, 2},
		{"grpc_server_started_total", []string{`grpc_method="WatchTopupEvents"`, `grpc_type="server_stream"`}, 1},
		{"grpc_server_msg_sent_total", []string{`grpc_method="WatchTopupEvents"`}, 2},
		{"grpc_server_msg_received_total", []string{`grpc_method="WatchTopupEvents"`}, 1},
		{"grpc_server_handled_total", []string{`grpc_method="WatchTopupEvents"`}, 1},
		{"upvest_gateway_upstream_requests_total", []string{`operation="CreateTopup"`, `attempt="1"`, `status="20`}, 1},
		{"upvest_gateway_upstream_requests_total", []string{`operation="GetTopup"`, `status="404"`}, 1},
		{"upvest_gateway_upstream_request_duration_seconds_count", []string{`operation="GetTopup"`}, 2},
		{"upvest_gateway_upstream_token_requests_total", []string{`result="ok"`}, 1},
		{"upvest_gateway_idempotency_requests_total", []string{`source="ran"`}, 1},
		{"upvest_gateway_idempotency_requests_total", []string{`source="replayed"`}, 1},
		{"upvest_gateway_webhook_deliveries_total", []string{`code="200"`}, 1},
		{"upvest_gateway_webhook_deliveries_total", []string{`code="401"`}, 1},
		{"upvest_gateway_webhook_rejections_total", []string{`reason="bad_signature"`}, 1},
		{"upvest_gateway_webhook_events_total", []string{`result="stored"`}, 1},
		{"upvest_gateway_event_log_append_duration_seconds_count", nil, 1},
		{"upvest_gateway_stream_event_lag_seconds_count", nil, 1},
	} {
		if v := sum(text, c.name, c.labels...); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if v := sum(text, "upvest_gateway_streams_active", watchMethod); v != 0 {
		t.Errorf("streams_active after the stream ended = %v", v)
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestAdminListener: the admin listener serves the profiler (but not the
// command line, which may hold a secret), /healthz and /readyz; other paths
// are problem+json 404s.
func TestAdminListener(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, servertest.WithMetrics(metrics.New("v")))
	for _, c := range []struct {
		path, contains string
		want           int
	}{
		{"/metrics", "go_goroutines", http.StatusOK},
		{"/debug/pprof/", "goroutine", http.StatusOK},
		{"/debug/pprof/heap?debug=1", "heap profile", http.StatusOK},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile", http.StatusOK},
		{"/debug/pprof/cmdline", "", http.StatusNotFound},
		{"/healthz", "SERVING", http.StatusOK},
		{"/readyz", "READY", http.StatusOK},
		{"/v1/payments/topups", "", http.StatusNotFound},
	} {
		res, err := g.HTTP.Get(g.AdminBaseURL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.want || !strings.Contains(string(b), c.contains) {
			t.Errorf("GET %s = %d %.200s, want %d with %q", c.path, res.StatusCode, b, c.want, c.contains)
		}
	}
	// Without WithMetrics there is nothing to scrape.
	bare := servertest.Start(t)
	if res, err := bare.HTTP.Get(bare.AdminBaseURL + "/metrics"); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without metrics: %v %v", res, err)
	}
}

// TestTracing: one trace runs from the caller's span through the gateway
// to the upstream request: over gRPC (the caller's client sends
// traceparent) and over REST (the HTTP header), the simulator sees a
// traceparent of the caller's trace whose parent is a span of the gateway's
// upstream client, under the gateway's server span, under the caller's. The
// server span carries the upvest-request-id and the idempotency key, and
// the request log the trace id.
func TestTracing(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	prop := propagation.TraceContext{}
	var logs logtest.Buffer
	g := servertest.Start(t, servertest.WithTracing(tp, prop), servertest.WithoutEvents(),
		servertest.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	caller := tp.Tracer("caller")

	conn, err := grpc.NewClient("passthrough:///"+g.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	for _, transport := range []string{"grpc", "rest"} {
		t.Run(transport, func(t *testing.T) {
			ctx, span := caller.Start(ctxT(t), "caller-"+transport)
			req := topupRequest(uuid.NewString())
			var upvestRequestID string
			if transport == "grpc" {
				var header metadata.MD
				if _, err := gatewayv1.NewTopupServiceClient(conn).CreateTopup(ctx, req, grpc.Header(&header)); err != nil {
					t.Fatal(err)
				}
				upvestRequestID = first(header, "upvest-request-id")
			} else {
				h := http.Header{}
				prop.Inject(ctx, propagation.HeaderCarrier(h))
				body, _ := json.Marshal(map[string]string{"request_id": req.RequestId, "account_group_id": req.AccountGroupId, "cash_amount": "10.00", "currency": "EUR"})
				res, b := g.Do(t, http.MethodPost, "/v1/payments/topups", string(body), h)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("REST create: %d %s", res.StatusCode, b)
				}
				upvestRequestID = res.Header.Get("Upvest-Request-Id")
			}
			span.End()
			traceID := span.SpanContext().TraceID()

			rec := simRequest(t, g.Sim, http.MethodPost, "/payments/topups", req.RequestId)
			parts := strings.Split(rec.Header.Get("Traceparent"), "-")
			if len(parts) != 4 || parts[1] != traceID.String() {
				t.Fatalf("Upvest saw traceparent %q, want one of trace %s", rec.Header.Get("Traceparent"), traceID)
			}

			// From the span Upvest saw as its parent up to the caller's.
			spans := map[trace.SpanID]tracetest.SpanStub{}
			for _, s := range exp.GetSpans() {
				if s.SpanContext.TraceID() == traceID {
					spans[s.SpanContext.SpanID()] = s
				}
			}
			id, _ := trace.SpanIDFromHex(parts[2])
			var chain []string
			var server *tracetest.SpanStub
			for id != span.SpanContext().SpanID() {
				s, ok := spans[id]
				if !ok {
					t.Fatalf("span %s of the chain %v is not exported", id, chain)
				}
				chain = append(chain, s.Name)
				if s.SpanKind == trace.SpanKindServer {
					server = &s
				}
				id = s.Parent.SpanID()
			}
			want := []string{"upvest HTTP POST", "upvest CreateTopup", "upvest.gateway.v1.TopupService/CreateTopup"}
			if transport == "grpc" {
				want = append(want, "upvest.gateway.v1.TopupService/CreateTopup") // the caller's client span
			}
			if strings.Join(chain, " < ") != strings.Join(want, " < ") {
				t.Errorf("spans from Upvest's parent to the caller: %v, want %v", chain, want)
			}
			if server == nil {
				t.Fatal("no server span")
			}
			attrs := map[attribute.Key]string{}
			for _, a := range server.Attributes {
				attrs[a.Key] = a.Value.Emit()
			}
			if attrs[upstream.AttrRequestID] != upvestRequestID || upvestRequestID == "" || attrs[upstream.AttrIdempotencyKey] != req.RequestId {
				t.Errorf("server span attributes %v, want upvest-request-id %q and idempotency key %q", attrs, upvestRequestID, req.RequestId)
			}
			if !strings.Contains(logs.String(), `"trace_id":"`+traceID.String()+`"`) ||
				!strings.Contains(logs.String(), `"request_id":"`+req.RequestId+`"`) {
				t.Errorf("no request log line with the trace id and request_id:\n%s", logs.String())
			}
		})
	}
}

// TestTraceContextWithTracingOff: with tracing off (a provider that records
// nothing), no span is made, but the caller's trace context still reaches
// Upvest as it came (the same trace and parent), over gRPC and over REST,
// and the request log has its trace id.
func TestTraceContextWithTracingOff(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	g := servertest.Start(t, tracingOff(t), servertest.WithoutEvents(),
		servertest.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	for _, transport := range []string{"grpc", "rest"} {
		t.Run(transport, func(t *testing.T) {
			traceID, traceparent := newTraceContext()
			req := topupRequest(uuid.NewString())
			if transport == "grpc" {
				ctx := metadata.AppendToOutgoingContext(ctxT(t), "traceparent", traceparent)
				if _, err := g.Topups().CreateTopup(ctx, req); err != nil {
					t.Fatal(err)
				}
			} else {
				body, _ := json.Marshal(map[string]string{"request_id": req.RequestId, "account_group_id": req.AccountGroupId, "cash_amount": "10.00", "currency": "EUR"})
				res, b := g.Do(t, http.MethodPost, "/v1/payments/topups", string(body), http.Header{"Traceparent": {traceparent}})
				if res.StatusCode != http.StatusOK {
					t.Fatalf("REST create: %d %s", res.StatusCode, b)
				}
			}
			if got := simRequest(t, g.Sim, http.MethodPost, "/payments/topups", req.RequestId).Header.Get("Traceparent"); got != traceparent {
				t.Errorf("Upvest saw traceparent %q, want the caller's %q", got, traceparent)
			}
			if !strings.Contains(logs.String(), `"trace_id":"`+traceID+`"`) {
				t.Errorf("no request log line with the trace id %s:\n%s", traceID, logs.String())
			}
		})
	}
}

// tracingOff is tracing as the binary has it without an exporter: a
// provider that records nothing.
func tracingOff(t *testing.T) servertest.Option {
	t.Helper()
	tr, err := tracing.New(context.Background(), tracing.Settings{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return servertest.WithTracing(tr.Provider, tr.Propagator)
}

// newTraceContext is a fresh W3C trace context: its trace id and the
// traceparent header that carries it.
func newTraceContext() (traceID, traceparent string) {
	traceID = strings.ReplaceAll(uuid.NewString(), "-", "")
	spanID := strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	return traceID, "00-" + traceID + "-" + spanID + "-01"
}

// simRequest is the simulator's record of the API request with the
// idempotency key.
func simRequest(t *testing.T, sim *upvestsim.Sim, method, path, key string) upvestsim.RequestRecord {
	t.Helper()
	for _, r := range sim.Requests() {
		if r.Method == method && r.Path == path && r.IdempotencyKey == key {
			return r
		}
	}
	t.Fatalf("Upvest saw no %s %s with key %s", method, path, key)
	return upvestsim.RequestRecord{}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// TestStreamTraceContextWithTracingOff: with tracing off, a Watch stream's
// request log line carries the trace id its caller sent, and one without a
// trace context gets none.
func TestStreamTraceContextWithTracingOff(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	g := start(t, eventstest.Backend{Name: "embedded"}, tracingOff(t),
		servertest.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	traceID, traceparent := newTraceContext()
	traced := topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: uuid.NewString()})
	w := startWatch(t, func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchTopupEventsResponse], error) {
		return traced(metadata.AppendToOutgoingContext(ctx, "traceparent", traceparent))
	})
	plain := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: uuid.NewString()}))
	w.stop()
	plain.stop()
	waitFor(t, 10*time.Second, "two Watch log lines", func() bool {
		return strings.Count(logs.String(), `"method":"/upvest.gateway.v1.TopupService/WatchTopupEvents"`) == 2
	})
	var withID, without int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, "WatchTopupEvents") {
			continue
		}
		switch {
		case strings.Contains(line, `"trace_id":"`+traceID+`"`):
			withID++
		case !strings.Contains(line, `"trace_id"`):
			without++
		}
	}
	if withID != 1 || without != 1 {
		t.Errorf("Watch log lines: %d with the caller's trace id, %d without any, want 1 and 1:\n%s", withID, without, logs.String())
	}
}
