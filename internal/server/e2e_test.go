package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// End-to-end tests of the event path: the simulator's real, signed webhook
// deliveries into the gateway's receiver, the event log (embedded, and the
// external NATS of GATEWAY_NATS_URL when set), and the Watch RPCs over gRPC
// and REST.

// streamSpec is one Watch stream of TestEventsExactlyOnce and the events it
// must carry.
type streamSpec struct {
	name     string
	w        *watch
	families []string
	ag       string   // "" for every account group
	types    []string // upstream types; nil for every type of the families
}

func (s streamSpec) wants(t *testing.T, e upvestsim.Event) bool {
	fam, _, _ := strings.Cut(e.Type, ".")
	if !slices.Contains(s.families, fam) || s.types != nil && !slices.Contains(s.types, e.Type) {
		return false
	}
	return s.ag == "" || simObject(t, e)["account_group_id"] == s.ag
}

// wantType is the enum name a stream gives an upstream event type.
func wantType(upstreamType string) string {
	fam, st, _ := strings.Cut(upstreamType, ".")
	switch fam {
	case "VIRTUAL_CASH_INCREASE", "VIRTUAL_CASH_DECREASE":
		return "VIRTUAL_CASH_EVENT_TYPE_" + strings.TrimPrefix(fam, "VIRTUAL_CASH_") + "_" + st
	case "TOPUP":
		return "TOPUP_EVENT_TYPE_" + st
	case "DIRECT_DEBIT", "WITHDRAWAL":
		return "PAYMENT_EVENT_TYPE_" + fam + "_" + st
	}
	return ""
}

// checkObject compares a streamed event's typed object with the resource
// the simulator sent.
func checkObject(t *testing.T, m msg, e upvestsim.Event) {
	t.Helper()
	if m.Object == nil {
		t.Errorf("event %s (%s) has no object", m.ID, e.Type)
		return
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m.Object)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := simObject(t, e)
	for _, k := range []string{"id", "account_group_id", "balance", "cash_amount", "amount", "available_for_trading"} {
		if w, ok := want[k]; ok && got[k] != w {
			t.Errorf("event %s (%s): object %s = %v, want %v", m.ID, e.Type, k, got[k], w)
		}
	}
	if st, ok := want["status"].(string); ok {
		if gs, _ := got["status"].(string); !strings.HasSuffix(gs, "_STATUS_"+st) {
			t.Errorf("event %s (%s): object status = %v, want %s", m.ID, e.Type, got["status"], st)
		}
	}
}

// TestEventsExactlyOnce: every event the simulator emits reaches each
// subscriber whose filter it matches exactly once, with its typed object,
// although the deliveries come in small batches and are retried after
// rejected and lost answers (so some arrive twice).
func TestEventsExactlyOnce(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		g := start(t, be)
		ctx := ctxT(t)
		ag1, ag2 := uuid.NewString(), uuid.NewString()

		specs := []streamSpec{
			{name: "virtual cash", families: []string{"VIRTUAL_CASH_INCREASE", "VIRTUAL_CASH_DECREASE"},
				w: startWatch(t, virtualCashWatch(g, &gatewayv1.WatchVirtualCashEventsRequest{}))},
			{name: "topups", families: []string{"TOPUP"},
				w: startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{}))},
			{name: "payments", families: []string{"DIRECT_DEBIT", "WITHDRAWAL"},
				w: startWatch(t, paymentWatch(g, &gatewayv1.WatchPaymentEventsRequest{}))},
			{name: "topups of ag1", families: []string{"TOPUP"}, ag: ag1,
				w: startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag1}))},
			{name: "settled topups", families: []string{"TOPUP"}, types: []string{"TOPUP.SETTLED"},
				w: startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{EventTypes: []gatewayv1.TopupEventType{gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_SETTLED}}))},
			{name: "confirmed payments of ag2", families: []string{"DIRECT_DEBIT", "WITHDRAWAL"}, ag: ag2,
				types: []string{"DIRECT_DEBIT.CONFIRMED", "WITHDRAWAL.CONFIRMED"},
				w: startWatch(t, paymentWatch(g, &gatewayv1.WatchPaymentEventsRequest{AccountGroupId: strings.ToUpper(ag2), EventTypes: []gatewayv1.PaymentEventType{
					gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_DIRECT_DEBIT_CONFIRMED,
					gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_WITHDRAWAL_CONFIRMED,
					gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_WITHDRAWAL_CONFIRMED, // repeated: once is enough
				}}))},
			{name: "virtual cash increases of ag1", families: []string{"VIRTUAL_CASH_INCREASE"}, ag: ag1,
				types: []string{"VIRTUAL_CASH_INCREASE.ISSUED", "VIRTUAL_CASH_INCREASE.CONFIRMED"},
				w: startWatch(t, virtualCashWatch(g, &gatewayv1.WatchVirtualCashEventsRequest{AccountGroupId: ag1, EventTypes: []gatewayv1.VirtualCashEventType{
					gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_INCREASE_ISSUED,
					gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_INCREASE_CONFIRMED,
				}}))},
			{name: "cash balance of ag1", families: []string{"CASH_BALANCE"}, ag: ag1,
				w: startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: ag1}))},
			{name: "cash balance of ag2", families: []string{"CASH_BALANCE"}, ag: ag2,
				w: startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: ag2}))},
		}

		// Deliveries fail in both ways Upvest retries: refused before they
		// are stored, and stored with the answer lost (duplicates).
		g.Webhooks.LoseAnswers(2)
		g.Webhooks.RejectNext(1)
		for _, ag := range []string{ag1, ag2} {
			if err := g.Sim.SetCashBalance(upvestsim.CashBalance{AccountGroupID: ag, Balance: "1000", AvailableForWithdrawal: "1000", AvailableForTrading: "1000"}); err != nil {
				t.Fatal(err)
			}
			for _, amount := range []string{"10.00", "20.00"} {
				if _, err := g.Topups().CreateTopup(ctx, &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: amount, Currency: "EUR"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := g.VirtualCash().CreateVirtualCashIncrease(ctx, &gatewayv1.CreateVirtualCashIncreaseRequest{RequestId: uuid.NewString(), AccountGroupId: ag, Amount: "5.00", Currency: "EUR"}); err != nil {
				t.Fatal(err)
			}
			if _, err := g.VirtualCash().CreateVirtualCashDecrease(ctx, &gatewayv1.CreateVirtualCashDecreaseRequest{RequestId: uuid.NewString(), AccountGroupId: ag, Amount: "1.00", Currency: "EUR"}); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Payments().CreateDirectDebit(ctx, &gatewayv1.CreateDirectDebitRequest{RequestId: uuid.NewString(), UserId: uuid.NewString(), AccountGroupId: ag,
				MandateId: uuid.NewString(), CashAmount: "7.00", RemittanceInformation: "test"}); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Payments().CreateWithdrawal(ctx, &gatewayv1.CreateWithdrawalRequest{RequestId: uuid.NewString(), ReferenceAccountId: uuid.NewString(), AccountGroupId: ag,
				UserId: uuid.NewString(), Amount: "3.00", RemittanceInformation: "test"}); err != nil {
				t.Fatal(err)
			}
		}
		g.Webhooks.LoseAnswers(1)
		for range 3 {
			g.Sim.Advance()
		}

		simEvents := g.Sim.Events()
		byID := map[string]upvestsim.Event{}
		for _, e := range simEvents {
			byID[e.ID] = e
		}
		for _, s := range specs {
			var want []string
			for _, e := range simEvents {
				if s.wants(t, e) {
					want = append(want, e.ID)
				}
			}
			if len(want) == 0 {
				t.Fatalf("%s: the simulator emitted nothing for it", s.name)
			}
			got := s.w.events(t, len(want))
			if s.families[0] == "CASH_BALANCE" {
				if s.w.first.Kind != "snapshot" {
					t.Errorf("%s: first message is a %s, want the snapshot", s.name, s.w.first.Kind)
				}
			}
			gotIDs := ids(got)
			slices.Sort(gotIDs)
			slices.Sort(want)
			equalIDs(t, s.name, gotIDs, want)
			for _, m := range got {
				e := byID[m.ID]
				if m.Kind == "event" && m.Type != wantType(e.Type) {
					t.Errorf("%s: event %s type %s, want %s", s.name, m.ID, m.Type, wantType(e.Type))
				}
				if m.Token == "" {
					t.Errorf("%s: event %s without a resume token", s.name, m.ID)
				}
				checkObject(t, m, e)
			}
		}
		for _, s := range specs {
			s.w.quiet(t, 300*time.Millisecond)
		}

		// The faults were hit: the simulator saw failed attempts and retried.
		failed := 0
		for _, d := range g.Sim.Deliveries() {
			if d.Status != http.StatusOK {
				failed++
			}
		}
		if failed < 4 {
			t.Errorf("%d failed delivery attempts, want at least the 4 injected", failed)
		}
		received, passed := g.Webhooks.Counts()
		t.Logf("%d events, %d delivery attempts (%d reached the gateway), %d failed", len(simEvents), received, passed, failed)
	})
}

// createTopups creates n top-ups of ag and returns the simulator's events
// of ag's top-ups (TOPUP.*) emitted so far, in order.
func createTopups(t *testing.T, g *servertest.Gateway, ag string, n int) []upvestsim.Event {
	t.Helper()
	for range n {
		if _, err := g.Topups().CreateTopup(ctxT(t), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "10.00", Currency: "EUR"}); err != nil {
			t.Fatal(err)
		}
	}
	return topupEvents(t, g, ag)
}

func topupEvents(t *testing.T, g *servertest.Gateway, ag string) []upvestsim.Event {
	var out []upvestsim.Event
	for _, e := range g.Sim.Events() {
		if strings.HasPrefix(e.Type, "TOPUP.") && simObject(t, e)["account_group_id"] == ag {
			out = append(out, e)
		}
	}
	return out
}

func simIDs(evs []upvestsim.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// TestEventsResume: a subscriber that disconnects and resumes with the
// token of the last message it processed, an event's or a heartbeat's,
// sees exactly the rest: nothing missed, nothing repeated.
func TestEventsResume(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		g := start(t, be)
		ag := uuid.NewString()
		req := func(token string) *gatewayv1.WatchTopupEventsRequest {
			return &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag, ResumeToken: token}
		}
		w := startWatch(t, topupWatch(g, req("")))
		if w.first.Kind != "heartbeat" || w.first.Token == "" {
			t.Fatalf("first message: %s with token %q, want a heartbeat with a token", w.first.Kind, w.first.Token)
		}
		evs := createTopups(t, g, ag, 5)
		got := w.events(t, 2)
		equalIDs(t, "before the disconnect", ids(got), simIDs(evs[:2]))
		w.stop()

		// Resume from an event's token: exactly the rest, in order.
		r := startWatch(t, topupWatch(g, req(got[1].Token)))
		equalIDs(t, "after resuming", ids(r.events(t, 3)), simIDs(evs[2:5]))
		r.quiet(t, 3*testHeartbeat)
		// A heartbeat after the last event carries a token past it.
		hb := r.heartbeat(t)
		r.stop()

		g.Sim.Advance() // settles the five top-ups
		evs = topupEvents(t, g, ag)
		h := startWatch(t, topupWatch(g, req(hb.Token)))
		equalIDs(t, "after resuming from a heartbeat", ids(h.events(t, 5)), simIDs(evs[5:10]))
		h.quiet(t, 3*testHeartbeat)

		// From the very first token: everything, once.
		all := startWatch(t, topupWatch(g, req(w.first.Token)))
		equalIDs(t, "from the first token", ids(all.events(t, 10)), simIDs(evs))
		all.quiet(t, 3*testHeartbeat)
	})
}

// TestEventsBadTokens: tokens that are not a position in this gateway's log
// are INVALID_ARGUMENT naming resume_token, on gRPC and REST.
func TestEventsBadTokens(t *testing.T) {
	g := start(t, eventstest.Backend{Name: "embedded"})
	other := start(t, eventstest.Backend{Name: "embedded"}, servertest.WithLogConfig(func(c *events.LogConfig) { c.Stream = "OTHER_EVENTS" }))
	foreign := startWatch(t, topupWatch(other, &gatewayv1.WatchTopupEventsRequest{})).first.Token
	for name, token := range map[string]string{
		"garbage":       "not-a-token",
		"too long":      strings.Repeat("A", 300),
		"flipped bit":   flipLast(startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{})).first.Token),
		"another log's": foreign,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tryWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{ResumeToken: token}))
			st := wantStatus(t, err, codes.InvalidArgument, "")
			if !hasViolation(st, "resume_token") {
				t.Errorf("%v: no BadRequest violation of resume_token", err)
			}
			res, body := g.Do(t, http.MethodGet, "/v1/payments/topups:watch?resume_token="+url.QueryEscape(token), "", nil)
			if res.StatusCode != http.StatusBadRequest || res.Header.Get("Content-Type") != problem.ContentType || !strings.Contains(string(body), "resume_token") {
				t.Errorf("REST: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
		})
	}
}

func flipLast(token string) string {
	b := []byte(token)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

func hasViolation(st *status.Status, field string) bool {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}

// TestEventsTokenPastRetention: a token older than the log's retention is
// OUT_OF_RANGE, telling the caller to re-read the state first.
func TestEventsTokenPastRetention(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		g := start(t, be, servertest.WithLogConfig(func(c *events.LogConfig) { c.MaxAge = time.Second }))
		ag := uuid.NewString()
		w := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag}))
		createTopups(t, g, ag, 3)
		got := w.events(t, 3)
		w.stop()

		var err error
		waitFor(t, 15*time.Second, "the events to expire", func() bool {
			_, err = tryWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag, ResumeToken: got[0].Token}))
			return status.Code(err) == codes.OutOfRange
		})
		st := wantStatus(t, err, codes.OutOfRange, "RESUME_TOKEN_EXPIRED")
		if !strings.Contains(st.Message(), "re-read the current state") || !strings.Contains(st.Message(), "without a resume_token") {
			t.Errorf("message %q does not say to re-read the state and watch without a token", st.Message())
		}
		res, body := g.Do(t, http.MethodGet, "/v1/payments/topups:watch?resume_token="+got[0].Token, "", nil)
		var p problem.Details
		if err := json.Unmarshal(body, &p); err != nil || res.StatusCode != http.StatusBadRequest || p.Code != "OUT_OF_RANGE" || !strings.Contains(p.Detail, "re-read") {
			t.Errorf("REST: %d %s", res.StatusCode, body)
		}
	})
}

// TestWebhookRejected: forged, unsigned and tampered deliveries are refused
// (401) and store nothing, not even their valid events. (Malformed events in
// a correctly signed delivery are quarantined instead: TestWebhookQuarantine.)
func TestWebhookRejected(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		signer := eventstest.NewWebhookSigner(t, "test-kid", httpsig.Version6)
		g := start(t, be, servertest.WithWebhookKeys(signer.Keys()))
		topups := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{}))
		cash := startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: uuid.NewString()}))
		from := topups.first.Token

		ag := uuid.NewString()
		good := func() map[string]any {
			return eventstest.RawEvent("TOPUP.SETTLED", time.Now(), map[string]any{"id": uuid.NewString(), "account_group_id": ag, "status": "SETTLED", "cash_amount": "1.00", "currency": "EUR"})
		}
		body := eventstest.DeliveryBody(t, good())
		forger := eventstest.NewWebhookSigner(t, g.Sim.WebhookKeyID(), httpsig.Version6) // the simulator's key id, another key
		stranger := eventstest.NewWebhookSigner(t, "unknown-kid", httpsig.Version6)
		badEvent := good()
		badEvent["id"] = "not-a-uuid"
		for _, tc := range []struct {
			name   string
			signer *eventstest.WebhookSigner
			body   []byte
			tamper func(*http.Request)
			want   int
		}{
			{"unsigned", nil, body, nil, http.StatusUnauthorized},
			{"forged with Upvest's key id", forger, body, nil, http.StatusUnauthorized},
			{"signed by an unknown key", stranger, body, nil, http.StatusUnauthorized},
			{"tampered body", signer, body, func(r *http.Request) {
				tampered := []byte(strings.Replace(string(body), `"1.00"`, `"9.00"`, 1))
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
			}, http.StatusUnauthorized},
			{"tampered signature", signer, body, func(r *http.Request) {
				sig := r.Header.Get("Signature")
				r.Header.Set("Signature", sig[:len(sig)-6]+"AAAA:")
			}, http.StatusUnauthorized},
			{"signature without the body digest", signer, body, func(r *http.Request) { r.Header.Del("Digest") }, http.StatusUnauthorized},
			{"forged, with a malformed event", forger, eventstest.DeliveryBody(t, good(), badEvent), nil, http.StatusUnauthorized},
		} {
			code, resp := deliver(t, g, tc.signer, tc.body, tc.tamper)
			if code != tc.want || !strings.Contains(string(resp), `"status":`) {
				t.Errorf("%s: %d %s, want %d problem", tc.name, code, resp, tc.want)
			}
		}
		topups.quiet(t, 300*time.Millisecond)
		cash.quiet(t, 0)

		// Nothing was stored: from the position before the bad deliveries,
		// the first event is the valid one that follows them.
		ok := good()
		if code, resp := deliver(t, g, signer, eventstest.DeliveryBody(t, ok), nil); code != http.StatusOK {
			t.Fatalf("valid delivery: %d %s", code, resp)
		}
		r := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{ResumeToken: from}))
		equalIDs(t, "stored", ids(r.events(t, 1)), []string{ok["id"].(string)})
		r.quiet(t, 300*time.Millisecond)
	})
}

// TestWebhookWhileLogDown: a delivery that arrives while the log cannot be
// reached gets a 5xx, and the simulator's retry after the log is back
// stores it; the subscriber connected throughout gets each event once.
func TestWebhookWhileLogDown(t *testing.T) {
	p := eventstest.NewTCPProxy(t, natsHostPort(t))
	g := start(t, eventstest.Backend{Name: "proxied", URL: p.URL()},
		servertest.WithReceiverOptions(webhook.WithAppendTimeout(500*time.Millisecond)))
	ag := uuid.NewString()
	w := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{AccountGroupId: ag}))

	p.SetDown(true)
	// Straight to Upvest: the gateway's own creates need NATS too (its
	// idempotency store), and refuse while it is down.
	if _, err := g.Upstream.CreateTopup(ctxT(t), upstream.CreateTopupRequest{AccountGroupID: ag, CashAmount: "10.00", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	evs := topupEvents(t, g, ag)
	failedFor := func(id string) bool {
		for _, d := range g.Sim.Deliveries() {
			if d.Status >= 500 && slices.Contains(d.EventIDs, id) {
				return true
			}
		}
		return false
	}
	waitFor(t, 20*time.Second, "a failed delivery", func() bool { return failedFor(evs[0].ID) })
	if res, _ := g.Do(t, http.MethodGet, "/readyz", "", nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the log down = %d, want 503", res.StatusCode)
	}
	if res, _ := g.Do(t, http.MethodGet, "/healthz", "", nil); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz with the log down = %d, want 200: it is the liveness check", res.StatusCode)
	}
	w.quiet(t, 200*time.Millisecond)

	p.SetDown(false)
	equalIDs(t, "after the outage", ids(w.events(t, 1)), simIDs(evs))
	waitFor(t, 20*time.Second, "the retried delivery", func() bool {
		for _, d := range g.Sim.Deliveries() {
			if d.Status == http.StatusOK && slices.Contains(d.EventIDs, evs[0].ID) {
				return true
			}
		}
		return false
	})
	w.quiet(t, 500*time.Millisecond)
	if res, _ := g.Do(t, http.MethodGet, "/readyz", "", nil); res.StatusCode != http.StatusOK {
		t.Errorf("/readyz after the outage = %d, want 200", res.StatusCode)
	}
}

// TestCashBalanceStream: a cash balance stream starts with the balance read
// from upstream, then sends each balance not older than the newest sent; an
// update created before one already sent (Upvest delivers without order
// across deliveries) is never sent, and resuming after it does not bring it
// back; one created at the same time as the newest sent is sent.
func TestCashBalanceStream(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		signer := eventstest.NewWebhookSigner(t, "test-kid", httpsig.Version6)
		// No clock-skew allowance: this test places updates around read_at
		// to the millisecond (TestCashBalanceSnapshotSkew covers the allowance).
		g := start(t, be, servertest.WithWebhookKeys(signer.Keys()),
			servertest.WithServerOptions(server.WithServiceOptions(service.WithSnapshotSkew(0))))
		ag := uuid.NewString()
		if err := g.Sim.SetCashBalance(upvestsim.CashBalance{AccountGroupID: ag, Balance: "100", AvailableForTrading: "100"}); err != nil {
			t.Fatal(err)
		}
		w := startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: ag}))
		if w.first.Kind != "snapshot" || w.first.Token == "" {
			t.Fatalf("first message: %s, want a snapshot with a token", w.first.Kind)
		}
		snap := w.first.Raw.(*gatewayv1.WatchCashBalanceResponse).GetSnapshot()
		if snap.GetCashBalance().GetBalance() != "100" || snap.GetReadAt() == nil {
			t.Fatalf("snapshot = %v, want balance 100 and read_at", snap)
		}
		readAt := snap.GetReadAt().AsTime()

		balance := func(at time.Time, b string) map[string]any {
			return eventstest.RawEvent("CASH_BALANCE.UPDATED", at, map[string]any{"account_group_id": ag, "currency": "EUR", "balance": b,
				"locked_for_trading": "0", "pending_settlement": "0", "available_for_withdrawal": "0", "available_for_trading": b})
		}
		send := func(evs ...map[string]any) {
			t.Helper()
			if code, resp := deliver(t, g, signer, eventstest.DeliveryBody(t, evs...), nil); code != http.StatusOK {
				t.Fatalf("delivery: %d %s", code, resp)
			}
		}
		beforeSnapshot := balance(readAt.Add(-time.Second), "90")
		newer := balance(readAt.Add(20*time.Millisecond), "200")
		older := balance(readAt.Add(10*time.Millisecond), "150")
		sameTime := balance(readAt.Add(20*time.Millisecond), "175")
		newest := balance(readAt.Add(30*time.Millisecond), "300")
		send(beforeSnapshot) // older than the snapshot
		send(newer)
		send(older)    // created before newer, delivered after it
		send(sameTime) // as old as newer, and later in the log: it wins
		send(newest)

		got := w.events(t, 3)
		equalIDs(t, "updates", ids(got), []string{newer["id"].(string), sameTime["id"].(string), newest["id"].(string)})
		for i, want := range []string{"200", "175", "300"} {
			u := got[i].Raw.(*gatewayv1.WatchCashBalanceResponse).GetUpdate()
			if u.GetCashBalance().GetBalance() != want || u.GetCreatedAt() == nil || u.GetWebhookId() == "" {
				t.Errorf("update %d = %v, want balance %s", i, u, want)
			}
		}
		w.quiet(t, 300*time.Millisecond)

		// A stream resumed from the snapshot's token remembers the snapshot's
		// time: it replays the log after it but still sends only newer,
		// sameTime and newest, never the balances older than the snapshot or
		// than newer.
		// The stale update was passed with a heartbeat: resuming from it
		// continues with sameTime and newest, not older.
		var afterStale string
		var resumedUpdates []string
		r := startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: ag, ResumeToken: w.first.Token}))
		if r.first.Kind != "heartbeat" {
			t.Fatalf("a resumed stream starts with a %s, want a heartbeat (no snapshot)", r.first.Kind)
		}
		for m := r.next(t); ; m = r.next(t) {
			if m.Kind == "heartbeat" && len(resumedUpdates) == 1 {
				afterStale = m.Token // after newer, before sameTime: older's
			}
			if m.Kind == "update" {
				resumedUpdates = append(resumedUpdates, m.ID)
			}
			if m.ID == newest["id"] {
				break
			}
		}
		r.stop()
		equalIDs(t, "updates of the resumed stream", resumedUpdates, []string{newer["id"].(string), sameTime["id"].(string), newest["id"].(string)})
		if afterStale == "" {
			t.Fatal("no heartbeat in place of the stale update")
		}
		s := startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: ag, ResumeToken: afterStale}))
		equalIDs(t, "after the stale update", ids(s.events(t, 2)), []string{sameTime["id"].(string), newest["id"].(string)})

		// The simulator's own updates follow, newer than all of these.
		time.Sleep(time.Until(readAt.Add(50 * time.Millisecond)))
		if _, err := g.Topups().CreateTopup(ctxT(t), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "10.00", Currency: "EUR"}); err != nil {
			t.Fatal(err)
		}
		u := w.events(t, 1)[0].Raw.(*gatewayv1.WatchCashBalanceResponse).GetUpdate()
		if u.GetCashBalance().GetBalance() != "110" {
			t.Errorf("the simulator's update = %v, want balance 110", u)
		}
	})
}

// TestCashBalanceSnapshotSkew: an update Upvest created just before the
// gateway read the snapshot, but delivered after it, still reaches the
// subscriber: clocks differ, and a stale balance is worse than a repeated one.
func TestCashBalanceSnapshotSkew(t *testing.T) {
	g := start(t, eventstest.Backend{Name: "embedded"})
	ag := uuid.NewString()
	g.Sim.PauseWebhooks(true)
	if err := g.Sim.SetCashBalance(upvestsim.CashBalance{AccountGroupID: ag, Balance: "100", AvailableForTrading: "100"}); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: ag}))
	snap := w.first.Raw.(*gatewayv1.WatchCashBalanceResponse).GetSnapshot()
	if w.first.Kind != "snapshot" || snap.GetCashBalance().GetBalance() != "100" {
		t.Fatalf("first message %s %v, want a snapshot of balance 100", w.first.Kind, snap)
	}
	if got := time.Since(snap.GetReadAt().AsTime()); got < service.DefaultSnapshotSkew {
		t.Errorf("read_at is %v before now, want at least the skew allowance %v", got, service.DefaultSnapshotSkew)
	}
	g.Sim.PauseWebhooks(false) // the update, created before the read, arrives now
	u := w.events(t, 1)[0].Raw.(*gatewayv1.WatchCashBalanceResponse).GetUpdate()
	if u.GetCashBalance().GetBalance() != "100" {
		t.Errorf("update = %v, want the balance of 100 the snapshot also had", u)
	}
}

// TestCashBalanceEqualTimestamps: two CASH_BALANCE.UPDATED events in one
// delivery, 100.00 then 40.00, with the same created_at: the later one in
// the log reaches the subscriber (it used to be dropped as "not newer"),
// and the stream ends on 40.00.
func TestCashBalanceEqualTimestamps(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		signer := eventstest.NewWebhookSigner(t, "test-kid", httpsig.Version6)
		g := start(t, be, servertest.WithWebhookKeys(signer.Keys()))
		ag := uuid.NewString()
		w := startWatch(t, cashBalanceWatch(g, &gatewayv1.WatchCashBalanceRequest{AccountGroupId: ag}))
		at := time.Now().Add(time.Second) // after the snapshot's read_at
		balance := func(b string) map[string]any {
			return eventstest.RawEvent("CASH_BALANCE.UPDATED", at, map[string]any{"account_group_id": ag, "currency": "EUR", "balance": b,
				"locked_for_trading": "0", "pending_settlement": "0", "available_for_withdrawal": b, "available_for_trading": b})
		}
		first, second := balance("100.00"), balance("40.00")
		if code, resp := deliver(t, g, signer, eventstest.DeliveryBody(t, first, second), nil); code != http.StatusOK {
			t.Fatalf("delivery: %d %s", code, resp)
		}
		got := w.events(t, 2)
		equalIDs(t, "updates", ids(got), []string{first["id"].(string), second["id"].(string)})
		if b := got[1].Raw.(*gatewayv1.WatchCashBalanceResponse).GetUpdate().GetCashBalance().GetBalance(); b != "40.00" {
			t.Errorf("last balance %s, want 40.00", b)
		}
	})
}

// TestSlowSubscriber: a subscriber that stops reading is ended with
// RESOURCE_EXHAUSTED once its buffer has stayed full, while another
// subscriber gets every event and every delivery is stored at once.
func TestSlowSubscriber(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		signer := eventstest.NewWebhookSigner(t, "test-kid", httpsig.Version6)
		g := start(t, be, servertest.WithWebhookKeys(signer.Keys()),
			servertest.WithServerOptions(server.WithServiceOptions(service.WithWatchOptions(
				events.WithBuffer(4), events.WithStallTimeout(300*time.Millisecond)))))
		// A client whose flow-control window stays small: once it stops
		// reading, the gateway can send it only so much.
		conn, err := grpc.NewClient("passthrough:///"+g.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		slow, err := gatewayv1.NewTopupServiceClient(conn).WatchTopupEvents(ctx, &gatewayv1.WatchTopupEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := slow.Recv(); err != nil {
			t.Fatal(err)
		}
		fast := startWatch(t, topupWatch(g, &gatewayv1.WatchTopupEventsRequest{}))

		// Large objects, so that a few dozen events fill the window.
		ref := strings.Repeat("R", 4000)
		var want []string
		for range 6 {
			var batch []map[string]any
			for range 40 {
				e := eventstest.RawEvent("TOPUP.SETTLED", time.Now(), map[string]any{"id": uuid.NewString(), "account_group_id": uuid.NewString(),
					"status": "SETTLED", "cash_amount": "1.00", "currency": "EUR", "settlement_reference": ref})
				batch = append(batch, e)
				want = append(want, e["id"].(string))
			}
			start := time.Now()
			if code, resp := deliver(t, g, signer, eventstest.DeliveryBody(t, batch...), nil); code != http.StatusOK {
				t.Fatalf("delivery: %d %s", code, resp)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("a delivery took %v with a stalled subscriber", d)
			}
		}
		equalIDs(t, "the fast subscriber", ids(fast.events(t, len(want))), want)

		// The slow subscriber reads again, long after its stall timeout:
		// what was in flight, then RESOURCE_EXHAUSTED.
		time.Sleep(time.Second)
		n := 0
		for {
			m, err := slow.Recv()
			if err != nil {
				wantStatus(t, err, codes.ResourceExhausted, "SLOW_SUBSCRIBER")
				break
			}
			if m.GetEvent() != nil {
				n++
			}
		}
		if n >= len(want) {
			t.Errorf("the slow subscriber got all %d events", n)
		}
		t.Logf("the slow subscriber got %d of %d events before it was ended", n, len(want))
		fast.quiet(t, 300*time.Millisecond)
	})
}

func topupRequest(ag string) *gatewayv1.CreateTopupRequest {
	return &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "10.00", Currency: "EUR"}
}
