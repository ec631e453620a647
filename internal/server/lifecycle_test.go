package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// holdCreates is the upstream transport of a test gateway that holds the
// next create of a top-up until released (or until its request is given
// up), so that a test can shut the gateway down with the call in flight.
type holdCreates struct {
	base     http.RoundTripper
	armed    atomic.Bool
	held     chan struct{} // closed once a create is held
	release  chan struct{}
	released sync.Once
}

func newHoldCreates(t *testing.T) *holdCreates {
	h := &holdCreates{base: http.DefaultTransport.(*http.Transport).Clone(), held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.Release)
	return h
}

// arm makes the next create be held.
func (h *holdCreates) arm() { h.armed.Store(true) }

func (h *holdCreates) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.URL.Path == "/payments/topups" && h.armed.CompareAndSwap(true, false) {
		close(h.held)
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return h.base.RoundTrip(r)
}

func (h *holdCreates) Release() { h.released.Do(func() { close(h.release) }) }

func (h *holdCreates) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-h.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the create never reached Upvest")
	}
}

// TestShutdownSequence: on SIGTERM (Serve's context done) with a stream
// open and a create in flight, readiness turns false first while every
// listener still serves; then the stream ends UNAVAILABLE carrying the last
// resume token it sent, the create in flight completes, and Serve returns.
// The stream resumes from that token on a second gateway sharing the log,
// with no gap and no repeat.
func TestShutdownSequence(t *testing.T) {
	t.Parallel()
	nats := eventstest.StartNATS(t)
	sfx := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	shared := []servertest.Option{
		servertest.WithLogConfig(func(c *events.LogConfig) { c.Stream, c.Subject = "SHUTDOWN_"+sfx, "shutdown"+sfx+".events" }),
		servertest.WithIdempotencyBucket("SHUTDOWN_IDEM_" + sfx),
	}
	hold := newHoldCreates(t)
	g1 := start(t, eventstest.Backend{Name: "shared", URL: nats}, append(shared,
		servertest.WithUpstreamOptions(upstream.WithTransport(hold)),
		// Long enough for the checks of the delay below on a loaded machine;
		// nothing waits for it to pass.
		servertest.WithServerOptions(server.WithShutdownDelay(5*time.Second), server.WithShutdownTimeout(time.Minute)))...)
	g2 := start(t, eventstest.Backend{Name: "shared", URL: nats}, append(shared, servertest.WithReplicaOf(g1))...)

	ag := uuid.NewString()
	w := startWatch(t, topupWatch(g1, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag}))
	a, err := g1.Topups().CreateTopup(ctxT(t), topupRequest(ag))
	if err != nil {
		t.Fatal(err)
	}
	checkTopupEvent(t, w.events(t, 1)[0], a.GetTopup().GetId(), "TOPUP_EVENT_TYPE_CONFIRMED")

	// A create in flight: Upvest has not answered yet.
	hold.arm()
	type result struct {
		resp *gatewayv1.CreateTopupResponse
		err  error
	}
	inFlight := make(chan result, 1)
	go func() {
		r, err := g1.Topups().CreateTopup(ctxT(t), topupRequest(ag))
		inFlight <- result{r, err}
	}()
	hold.waitHeld(t)

	stopped := make(chan error, 1)
	go func() { stopped <- g1.Stop() }() // as SIGTERM does

	// Not ready first, on every face, while everything still serves.
	waitFor(t, 10*time.Second, "/readyz 503", func() bool {
		res, _ := g1.Do(t, http.MethodGet, "/readyz", "", nil)
		return res.StatusCode == http.StatusServiceUnavailable
	})
	for _, c := range []struct {
		url  string
		want int
	}{
		{g1.AdminBaseURL + "/readyz", http.StatusServiceUnavailable},
		{g1.AdminBaseURL + "/healthz", http.StatusOK},
		{g1.BaseURL + "/healthz", http.StatusOK},
		{g1.BaseURL + "/v1/account_groups/" + ag + "/payments/cash_balance", http.StatusOK}, // a new call, still served
	} {
		res, err := g1.HTTP.Get(c.url)
		if err != nil {
			t.Fatalf("GET %s while not ready: %v", c.url, err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("GET %s while not ready = %d, want %d", c.url, res.StatusCode, c.want)
		}
	}
	for _, svc := range []string{"", gatewayv1.TopupService_ServiceDesc.ServiceName} {
		resp, err := healthpb.NewHealthClient(g1.Conn).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("gRPC health of %q while not ready: %v %v, want NOT_SERVING", svc, resp.GetStatus(), err)
		}
	}
	// From now on Upvest delivers to the second replica, as a load
	// balancer would.
	g1.Webhooks.Retarget(g2.WebhookBaseURL)

	// The drain: the stream ends with the token of the last message it got.
	endErr := w.end(t)
	var last string
	for len(w.msgs) > 0 {
		last = (<-w.msgs).Token
	}
	st := wantStatus(t, endErr, codes.Unavailable, "SHUTTING_DOWN")
	var token string
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			token = ei.GetMetadata()[server.ResumeTokenMetadata]
		}
	}
	if token == "" || (last != "" && token != last) {
		t.Fatalf("the shutdown status carries token %q, the last message %q", token, last)
	}

	// The create in flight completes, then Serve returns.
	hold.Release()
	var b result
	select {
	case b = <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("the create in flight did not complete")
	}
	if b.err != nil {
		t.Fatalf("the create in flight: %v, want it to complete", b.err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := g1.Topups().GetTopup(ctxT(t), &gatewayv1.GetTopupRequest{TopupId: b.resp.GetTopup().GetId()}); status.Code(err) != codes.Unavailable {
		t.Errorf("a call after the shutdown: %v, want UNAVAILABLE", err)
	}

	// Resumed on the other replica: the in-flight create's event, and
	// nothing before it again.
	w2 := startWatch(t, topupWatch(g2, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag, ResumeToken: token}))
	checkTopupEvent(t, w2.events(t, 1)[0], b.resp.GetTopup().GetId(), "TOPUP_EVENT_TYPE_CONFIRMED")
	w2.quiet(t, 300*time.Millisecond)
}

// TestShutdownCutsOffREST: a REST create still running when the drain
// times out is answered 503 problem+json with its idempotency key (reason
// OUTCOME_UNKNOWN), from the body's request_id or the Idempotency-Key
// header, never with an empty reply.
func TestShutdownCutsOffREST(t *testing.T) {
	t.Parallel()
	for _, inHeader := range []bool{false, true} {
		t.Run(map[bool]string{false: "request_id", true: "Idempotency-Key"}[inHeader], func(t *testing.T) {
			t.Parallel()
			hold := newHoldCreates(t)
			hold.arm()
			g := servertest.Start(t, servertest.WithoutEvents(), servertest.WithUpstreamOptions(upstream.WithTransport(hold)),
				servertest.WithServerOptions(server.WithShutdownTimeout(100*time.Millisecond)))
			key := uuid.NewString()
			fields := map[string]string{"account_group_id": uuid.NewString(), "cash_amount": "10.00", "currency": "EUR"}
			h := http.Header{}
			if inHeader {
				h.Set(server.HeaderIdempotencyKey, key)
			} else {
				fields["request_id"] = key
			}
			body, _ := json.Marshal(fields)
			type answer struct {
				res  *http.Response
				body []byte
			}
			answered := make(chan answer, 1)
			go func() {
				res, b := g.Do(t, http.MethodPost, "/v1/payments/topups", string(body), h)
				answered <- answer{res, b}
			}()
			hold.waitHeld(t)
			if err := g.Stop(); err != nil {
				t.Fatal(err)
			}
			var a answer
			select {
			case a = <-answered:
			case <-time.After(20 * time.Second):
				t.Fatal("no answer")
			}
			var p problem.Details
			if err := json.Unmarshal(a.body, &p); err != nil || a.res.StatusCode != http.StatusServiceUnavailable ||
				a.res.Header.Get("Content-Type") != problem.ContentType || a.res.Header.Get(server.HeaderIdempotencyKey) != key {
				t.Fatalf("cut off: %d %v %s", a.res.StatusCode, a.res.Header, a.body)
			}
			if p.Code != "UNAVAILABLE" || !strings.Contains(string(a.body), `"OUTCOME_UNKNOWN"`) || !strings.Contains(string(a.body), `"idempotency_key":"`+key+`"`) {
				t.Errorf("cut off: %s, want UNAVAILABLE, OUTCOME_UNKNOWN and the key", a.body)
			}
		})
	}
}
