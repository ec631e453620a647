package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// testHeartbeat is the heartbeat interval of the test gateways' streams.
const testHeartbeat = 150 * time.Millisecond

// start starts a gateway and simulator pair whose log is on be, with quick
// heartbeats, small webhook batches and quick webhook retries.
func start(t *testing.T, be eventstest.Backend, opts ...servertest.Option) *servertest.Gateway {
	t.Helper()
	base := []servertest.Option{
		servertest.WithNATS(be.URL),
		servertest.WithSimConfig(func(c *upvestsim.Config) {
			c.WebhookBatchSize = 3
			c.WebhookBackoffUnit = 5 * time.Millisecond
		}),
		servertest.WithServerOptions(server.WithServiceOptions(service.WithWatchOptions(events.WithHeartbeat(testHeartbeat)))),
	}
	return servertest.Start(t, append(base, opts...)...)
}

// msg is one message of a Watch stream, whatever the RPC.
type msg struct {
	Token  string
	Kind   string        // event, heartbeat, snapshot, update
	ID     string        // the upstream event id of an event or update
	Type   string        // the event type's enum name
	Object proto.Message // the typed object of an event, update or snapshot; nil if unset
	Raw    proto.Message
}

func toMsg(m proto.Message) msg {
	pm := m.ProtoReflect()
	d := pm.Descriptor()
	out := msg{Raw: m, Token: pm.Get(d.Fields().ByName("resume_token")).String()}
	f := pm.WhichOneof(d.Oneofs().ByName("kind"))
	if f == nil {
		return out
	}
	out.Kind = string(f.Name())
	inner := pm.Get(f).Message()
	fields := inner.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.Name() == "id":
			out.ID = inner.Get(fd).String()
		case fd.Name() == "type" && fd.Kind() == protoreflect.EnumKind:
			if v := fd.Enum().Values().ByNumber(inner.Get(fd).Enum()); v != nil {
				out.Type = string(v.Name())
			}
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != "google.protobuf.Timestamp" && inner.Has(fd):
			out.Object = inner.Get(fd).Message().Interface()
		}
	}
	return out
}

// watch is a running Watch RPC whose messages arrive on msgs.
type watch struct {
	msgs   chan msg
	done   chan error
	cancel context.CancelFunc
	first  msg // the first message: a heartbeat, or a snapshot
}

// startWatch opens a stream with open and waits for its first message.
func startWatch[R any](t *testing.T, open func(context.Context) (grpc.ServerStreamingClient[R], error)) *watch {
	t.Helper()
	w, err := tryWatch(t, open)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return w
}

// tryWatch is startWatch returning the error a stream ends with before its
// first message.
func tryWatch[R any](t *testing.T, open func(context.Context) (grpc.ServerStreamingClient[R], error)) (*watch, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	w := &watch{msgs: make(chan msg, 100000), done: make(chan error, 1), cancel: cancel}
	stream, err := open(ctx)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				w.done <- err
				return
			}
			w.msgs <- toMsg(any(m).(proto.Message))
		}
	}()
	select {
	case w.first = <-w.msgs:
		return w, nil
	case err := <-w.done:
		return nil, err
	case <-time.After(20 * time.Second):
		t.Fatal("no first message")
	}
	return w, nil
}

// next returns the next message of any kind.
func (w *watch) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-w.msgs:
		return m
	case err := <-w.done:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no message")
	}
	return msg{}
}

// events collects the next n messages that are not heartbeats.
func (w *watch) events(t *testing.T, n int) []msg {
	t.Helper()
	var out []msg
	deadline := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case m := <-w.msgs:
			if m.Kind != "heartbeat" {
				out = append(out, m)
			}
		case err := <-w.done:
			t.Fatalf("the stream ended after %d of %d events: %v", len(out), n, err)
		case <-deadline:
			t.Fatalf("got %d of %d events: %v", len(out), n, ids(out))
		}
	}
	return out
}

// quiet fails if anything but heartbeats arrives within d.
func (w *watch) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-w.msgs:
			if m.Kind != "heartbeat" {
				t.Fatalf("unexpected %s %s", m.Kind, m.ID)
			}
		case err := <-w.done:
			t.Fatalf("the stream ended: %v", err)
		case <-deadline:
			return
		}
	}
}

// heartbeat returns the next heartbeat, failing on anything else.
func (w *watch) heartbeat(t *testing.T) msg {
	t.Helper()
	m := w.next(t)
	if m.Kind != "heartbeat" {
		t.Fatalf("got %s %s, want a heartbeat", m.Kind, m.ID)
	}
	return m
}

// end waits for the stream to end and returns its error.
func (w *watch) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end")
	}
	return nil
}

// stop cancels the stream.
func (w *watch) stop() { w.cancel() }

func ids(ms []msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func equalIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: got %d events %v, want %d %v", what, len(got), got, len(want), want)
	}
}

// The gRPC streams of the four Watch RPCs.

func topupWatch(g *servertest.Gateway, req *gatewayv1.WatchTopupEventsRequest) func(context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchTopupEventsResponse], error) {
	return func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchTopupEventsResponse], error) {
		return g.Topups().WatchTopupEvents(ctx, req)
	}
}

func paymentWatch(g *servertest.Gateway, req *gatewayv1.WatchPaymentEventsRequest) func(context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchPaymentEventsResponse], error) {
	return func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchPaymentEventsResponse], error) {
		return g.Payments().WatchPaymentEvents(ctx, req)
	}
}

func virtualCashWatch(g *servertest.Gateway, req *gatewayv1.WatchVirtualCashEventsRequest) func(context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchVirtualCashEventsResponse], error) {
	return func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchVirtualCashEventsResponse], error) {
		return g.VirtualCash().WatchVirtualCashEvents(ctx, req)
	}
}

func cashBalanceWatch(g *servertest.Gateway, req *gatewayv1.WatchCashBalanceRequest) func(context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchCashBalanceResponse], error) {
	return func(ctx context.Context) (grpc.ServerStreamingClient[gatewayv1.WatchCashBalanceResponse], error) {
		return g.CashBalance().WatchCashBalance(ctx, req)
	}
}

// wantStatus checks a status's code and ErrorInfo reason.
func wantStatus(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	if reason != "" {
		var got string
		for _, d := range st.Details() {
			if ei, ok := d.(*errdetails.ErrorInfo); ok {
				got = ei.GetReason()
			}
		}
		if got != reason {
			t.Errorf("ErrorInfo reason = %q, want %q (%v)", got, reason, err)
		}
	}
	return st
}

// deliver posts body to the gateway's webhook receiver, signed by s (nil:
// unsigned), after tamper (if any) has had its way with the request.
func deliver(t *testing.T, g *servertest.Gateway, s *eventstest.WebhookSigner, body []byte, tamper func(*http.Request)) (int, []byte) {
	t.Helper()
	req := eventstest.NewDelivery(t, g.WebhookBaseURL+server.WebhookPath, s, body)
	if tamper != nil {
		tamper(req)
	}
	resp, err := g.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// simObject decodes a simulator event's object.
func simObject(t *testing.T, e upvestsim.Event) map[string]any {
	t.Helper()
	var o map[string]any
	if err := json.Unmarshal(e.Object, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// natsHostPort is the external NATS of GATEWAY_NATS_URL when set, else a
// NATS server with JetStream that the test runs on a loopback port: either
// way a NATS the gateway reaches over TCP, so a proxy can cut it off.
func natsHostPort(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("GATEWAY_NATS_URL"); u != "" {
		host, _, _ := strings.Cut(strings.TrimPrefix(u, "nats://"), ",")
		return host
	}
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the test's NATS server did not start")
	}
	return srv.Addr().String()
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
