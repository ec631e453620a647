package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/upvest-gateway/gateway/gen/openapi"
	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHealth(t *testing.T) {
	g := servertest.Start(t)
	hc := healthpb.NewHealthClient(g.Conn)
	for _, svc := range append(service.ServiceNames(), "") {
		resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}
	if _, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of an unknown service: %v, want NotFound", err)
	}
	res, body := g.Do(t, http.MethodGet, "/healthz", "", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "SERVING") {
		t.Errorf("/healthz = %d %s, want 200 SERVING", res.StatusCode, body)
	}
}

func TestReflection(t *testing.T) {
	g := servertest.Start(t)
	stream, err := reflectionpb.NewServerReflectionClient(g.Conn).ServerReflectionInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		got[s.GetName()] = true
	}
	for _, want := range append(service.ServiceNames(), "grpc.health.v1.Health") {
		if !got[want] {
			t.Errorf("reflection does not list %s (lists %v)", want, got)
		}
	}
	// And describes them, so grpcurl can build requests.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "upvest.gateway.v1.TopupService",
	}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("no descriptor for TopupService: %v %v", resp, err)
	}
}

func TestOpenAPI(t *testing.T) {
	g := servertest.Start(t)
	res, body := g.Do(t, http.MethodGet, "/openapi.json", "", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, openapi.Gateway) {
		t.Error("/openapi.json is not the generated description")
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.OpenAPI != "3.1.0" || doc.Paths["/v1/payments/topups"] == nil {
		t.Errorf("/openapi.json: %v, openapi %q, %d paths", err, doc.OpenAPI, len(doc.Paths))
	}
}

// TestWatchUnimplemented: without an event log the Watch RPCs say so.
func TestWatchUnimplemented(t *testing.T) {
	g := servertest.Start(t, servertest.WithoutEvents())
	stream, err := g.Topups().WatchTopupEvents(ctxT(t), &gatewayv1.WatchTopupEventsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("WatchTopupEvents: %v, want Unimplemented", err)
	}
	cb, err := g.CashBalance().WatchCashBalance(ctxT(t), &gatewayv1.WatchCashBalanceRequest{AccountGroupId: uuid.NewString()})
	if err == nil {
		_, err = cb.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("WatchCashBalance: %v, want Unimplemented", err)
	}
}

// TestRESTProblems: REST failures that never reach a service are
// problem+json too, with the right status.
func TestRESTProblems(t *testing.T) {
	g := servertest.Start(t, servertest.WithServerOptions(server.WithMaxBodyBytes(1024)))
	big := `{"accountGroupId":"` + strings.Repeat("a", 2048) + `"}`
	tests := []struct {
		name, method, path, body string
		chunked                  bool
		status                   int
		code                     string
	}{
		{"unknown route", http.MethodGet, "/v1/nothing/here", "", false, 404, "NOT_FOUND"},
		{"outside /v1", http.MethodGet, "/admin", "", false, 404, "NOT_FOUND"},
		{"wrong method", http.MethodPut, "/v1/payments/topups", "{}", false, 405, "UNIMPLEMENTED"},
		{"malformed JSON", http.MethodPost, "/v1/payments/topups", `{"cashAmount":`, false, 400, "INVALID_ARGUMENT"},
		{"unknown field", http.MethodPost, "/v1/payments/topups", `{"cashAmout":"1.00"}`, false, 400, "INVALID_ARGUMENT"},
		{"amount as a number", http.MethodPost, "/v1/payments/topups", `{"cashAmount":1.5}`, false, 400, "INVALID_ARGUMENT"},
		{"body too large", http.MethodPost, "/v1/payments/topups", big, false, 413, "INVALID_ARGUMENT"},
		{"chunked body too large", http.MethodPost, "/v1/payments/topups", big, true, 413, "INVALID_ARGUMENT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(g.Sim.Requests())
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
			}
			req, _ := http.NewRequest(tc.method, g.BaseURL+tc.path, body)
			req.Header.Set("Content-Type", "application/json")
			res, err := g.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var p problem.Details
			if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
				t.Fatalf("body: %v", err)
			}
			if res.StatusCode != tc.status || p.Status != tc.status || p.Code != tc.code ||
				res.Header.Get("Content-Type") != problem.ContentType || p.Title == "" || p.Type == "" {
				t.Errorf("got %d %s %+v, want %d %s problem", res.StatusCode, res.Header.Get("Content-Type"), p, tc.status, tc.code)
			}
			if n := len(g.Sim.Requests()); n != before {
				t.Error("the request reached the upstream")
			}
		})
	}
}

// TestRequestLog: one record per call with method, code, duration and the
// upvest-request-id; no payload and no credential in any log line, the
// upstream client's included.
func TestRequestLog(t *testing.T) {
	var logs logtest.Buffer
	l := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := servertest.Start(t,
		servertest.WithServerOptions(server.WithLogger(l)),
		servertest.WithUpstreamOptions(upstream.WithLogger(l)))
	ag := uuid.NewString()
	const amount = "31337.42"

	var hdr metadata.MD
	if _, err := g.Topups().CreateTopup(ctxT(t), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: amount, Currency: "EUR"}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	res, _ := g.Do(t, http.MethodGet, "/v1/payments/topups/"+uuid.NewString(), "", nil) // a 404, over REST

	var records []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == "rpc" {
			records = append(records, r)
		}
	}
	if len(records) != 2 {
		t.Fatalf("%d rpc records, want 2:\n%s", len(records), logs.String())
	}
	create, get := records[0], records[1]
	if create["method"] != "/upvest.gateway.v1.TopupService/CreateTopup" || create["code"] != "OK" || create["transport"] != "grpc" ||
		create["upvest_request_id"] != hdr.Get("upvest-request-id")[0] || create["idempotency_key"] != hdr.Get("idempotency-key")[0] {
		t.Errorf("create record = %v", create)
	}
	if _, ok := create["duration"]; !ok {
		t.Errorf("create record without duration: %v", create)
	}
	if get["method"] != "/upvest.gateway.v1.TopupService/GetTopup" || get["code"] != "NotFound" || get["transport"] != "rest" ||
		get["upvest_request_id"] != res.Header.Get("Upvest-Request-Id") || get["reason"] != "NOT_FOUND" {
		t.Errorf("get record = %v", get)
	}
	all := logs.String()
	// Signature headers: their names as keys, or their values (sig1=…);
	// the receiver's signature_version is no secret.
	for _, secret := range []string{g.ClientSecret, amount, "Bearer", "BEGIN", `"signature"`, `"signature-input"`, "sig1="} {
		if strings.Contains(all, secret) {
			t.Errorf("the log contains %q:\n%s", secret, all)
		}
	}
}

// TestPanicRecovery: a panic becomes INTERNAL without its value, on both
// faces, and the server keeps serving.
func TestPanicRecovery(t *testing.T) {
	const secret = "panic-value-with-secret-7f3a"
	var logs logtest.Buffer
	boom := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasSuffix(info.FullMethod, "/GetCashBalance") {
			panic(fmt.Errorf("%s", secret))
		}
		return h(ctx, req)
	}
	g := servertest.Start(t, servertest.WithServerOptions(
		server.WithUnaryInterceptors(boom),
		server.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))))
	ag := uuid.NewString()
	_, err := g.CashBalance().GetCashBalance(ctxT(t), &gatewayv1.GetCashBalanceRequest{AccountGroupId: ag})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), secret) {
		t.Errorf("gRPC: %v, want Internal without the panic value", err)
	}
	res, body := g.Do(t, http.MethodGet, "/v1/account_groups/"+ag+"/payments/cash_balance", "", nil)
	if res.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), secret) {
		t.Errorf("REST: %d %s, want 500 without the panic value", res.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "panic in handler") || strings.Contains(logs.String(), secret) {
		t.Errorf("log: want the panic recorded without its value:\n%s", logs.String())
	}
	if _, err := g.Topups().ListTopups(ctxT(t), &gatewayv1.ListTopupsRequest{AccountGroupId: ag}); err != nil {
		t.Errorf("after a panic: %v", err)
	}
}

func TestHTTPHandlerSeam(t *testing.T) {
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	g := servertest.Start(t, servertest.WithoutEvents(), servertest.WithServerOptions(server.WithHTTPHandler("POST /webhooks/upvest", hook)))
	if res, _ := g.Do(t, http.MethodPost, "/webhooks/upvest", `{"payload":[]}`, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("POST /webhooks/upvest = %d, want the added handler's 204", res.StatusCode)
	}
	if res, _ := g.Do(t, http.MethodGet, "/webhooks/upvest", "", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /webhooks/upvest = %d, want 404: the route is POST only", res.StatusCode)
	}

	for _, pattern := range []string{"/v1/", "GET /healthz", "bad pattern with spaces"} {
		_, err := server.New(server.Config{Upstream: g.Upstream, GRPCListener: listen(t), HTTPListener: listen(t)},
			server.WithHTTPHandler(pattern, hook), server.WithLogger(slog.New(slog.DiscardHandler)))
		if err == nil {
			t.Errorf("WithHTTPHandler(%q) conflicting with the gateway's routes was accepted", pattern)
		}
	}
}

func TestNewConfig(t *testing.T) {
	g := servertest.Start(t)
	for name, cfg := range map[string]server.Config{
		"no upstream":      {GRPCListener: listen(t), HTTPListener: listen(t)},
		"no gRPC listener": {Upstream: g.Upstream, HTTPListener: listen(t)},
		"no HTTP listener": {Upstream: g.Upstream, GRPCListener: listen(t)},
	} {
		if _, err := server.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestGracefulShutdown: calls in flight finish, then Serve returns and the
// ports are closed.
func TestGracefulShutdown(t *testing.T) {
	g := servertest.Start(t)
	g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, Method: http.MethodGet, PathPrefix: "/payments/topups/", Count: 2, Delay: 500 * time.Millisecond})

	ctx := ctxT(t)
	var wg sync.WaitGroup
	var grpcErr error
	var restStatus int
	wg.Go(func() {
		_, grpcErr = g.Topups().GetTopup(ctx, &gatewayv1.GetTopupRequest{TopupId: uuid.NewString()})
	})
	wg.Go(func() {
		res, err := g.HTTP.Get(g.BaseURL + "/v1/payments/topups/" + uuid.NewString())
		if err == nil {
			restStatus = res.StatusCode
			res.Body.Close()
		}
	})
	servertest.WaitUntil(t, func() bool { return g.Sim.TokenRequests() > 0 })
	time.Sleep(150 * time.Millisecond) // both calls are now waiting on the simulator

	start := time.Now()
	if err := g.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	wg.Wait()
	if status.Code(grpcErr) != codes.NotFound || restStatus != http.StatusNotFound {
		t.Errorf("calls in flight: gRPC %v, REST %d; want both to finish with the upstream's 404", grpcErr, restStatus)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if c, err := net.DialTimeout("tcp", g.Server.HTTPAddr(), time.Second); err == nil {
		c.Close()
		t.Error("the HTTP port still accepts connections after Serve returned")
	}
	if c, err := net.DialTimeout("tcp", g.Server.GRPCAddr(), time.Second); err == nil {
		c.Close()
		t.Error("the gRPC port still accepts connections after Serve returned")
	}
}

// TestShutdownTimeout: a call that outlives the drain time is cut off, and
// Serve still returns promptly.
func TestShutdownTimeout(t *testing.T) {
	g := servertest.Start(t, servertest.WithServerOptions(server.WithShutdownTimeout(200*time.Millisecond)))
	g.Sim.InjectFault(upvestsim.Fault{Kind: upvestsim.FaultLatency, Method: http.MethodGet, PathPrefix: "/payments/topups/", Delay: 10 * time.Second})
	errc := make(chan error, 1)
	ctx := ctxT(t)
	go func() {
		_, err := g.Topups().GetTopup(ctx, &gatewayv1.GetTopupRequest{TopupId: uuid.NewString()})
		errc <- err
	}()
	servertest.WaitUntil(t, func() bool { return g.Sim.TokenRequests() > 0 })
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop took %v with a 200ms drain time", d)
	}
	select {
	case err := <-errc:
		if code := status.Code(err); code != codes.Unavailable && code != codes.Canceled {
			t.Errorf("the cut-off call: %v, want Unavailable or Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the call in flight did not end")
	}
}

func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
