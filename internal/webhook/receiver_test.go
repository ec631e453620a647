package webhook

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// newTestReceiver serves a receiver on l and its quarantine.
func newTestReceiver(t *testing.T, l *testLog, ks *keySource, opts ...Option) string {
	t.Helper()
	return newTestReceiverOn(t, l, l.quarantine, ks, opts...)
}

// newTestReceiverOn serves a receiver appending to app.
func newTestReceiverOn(t *testing.T, app Appender, q Quarantine, ks *keySource, opts ...Option) string {
	t.Helper()
	url, _ := serveReceiver(t, app, q, ks, opts...)
	return url
}

func serveReceiver(t *testing.T, app Appender, q Quarantine, ks *keySource, opts ...Option) (string, *Receiver) {
	t.Helper()
	opts = append([]Option{WithLogger(logtest.Logger(t))}, opts...)
	rc := NewReceiver(app, q, ks.fetch, opts...)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks/upvest", rc
}

func TestReceiverStores(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		v6, v15 := eventstest.NewWebhookSigner(t, "kid-v6", httpsig.Version6), eventstest.NewWebhookSigner(t, "kid-v15", httpsig.Version15)
		url := newTestReceiver(t, l, newKeySource(v6, v15))
		s := startWatch(t, l, events.Filter{})

		ag := uuid.NewString()
		first := []map[string]any{rawEvent("TOPUP.CONFIRMED", ag), rawEvent("CASH_BALANCE.UPDATED", ag), rawEvent("TOPUP.SETTLED", ag)}
		second := []map[string]any{first[2], rawEvent("WITHDRAWAL.NEW", ag)} // overlaps the first
		for _, d := range []struct {
			s    *eventstest.WebhookSigner
			body []byte
		}{
			{v6, eventstest.DeliveryBody(t, first...)},
			{v6, eventstest.DeliveryBody(t, first...)}, // Upvest retrying
			{v15, eventstest.DeliveryBody(t, second...)},
		} {
			if code, body := post(t, url, d.s, d.body); code != http.StatusOK {
				t.Fatalf("delivery = %d %s", code, body)
			}
		}
		got := s.events(t, 4)
		want := []string{first[0]["id"].(string), first[1]["id"].(string), first[2]["id"].(string), second[1]["id"].(string)}
		equalIDs(t, msgIDs(got), want)
		s.quiet(t, 200*time.Millisecond)
	})
}

// A delivery holding an event of a category the gateway does not know is
// stored, not refused: a refusal would make Upvest retry it forever and
// hold back every later delivery. The event lands under its own family's
// subject, where no family filter sees it.
func TestReceiverUnknownFamily(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		signer := eventstest.NewWebhookSigner(t, "kid-v6", httpsig.Version6)
		url := newTestReceiver(t, l, newKeySource(signer))
		ag := uuid.NewString()
		all := startWatch(t, l, events.Filter{})
		topups := startWatch(t, l, events.Filter{Families: []string{events.FamilyTopup}})

		unknown, known := rawEvent("PORTFOLIO_ORDER.FILLED", ag), rawEvent("TOPUP.SETTLED", ag)
		if code, body := post(t, url, signer, eventstest.DeliveryBody(t, unknown, known)); code != http.StatusOK {
			t.Fatalf("delivery = %d %s", code, body)
		}
		got := all.events(t, 2)
		equalIDs(t, msgIDs(got), []string{unknown["id"].(string), known["id"].(string)})
		if got[0].Event.Type != "PORTFOLIO_ORDER.FILLED" || got[0].Event.Family() != "PORTFOLIO_ORDER" {
			t.Errorf("stored as %q", got[0].Event.Type)
		}
		equalIDs(t, msgIDs(topups.events(t, 1)), []string{known["id"].(string)})
		topups.quiet(t, 200*time.Millisecond)

		// Subscribers still name only the families the gateway knows.
		err := l.Watch(context.Background(), events.Filter{Types: []string{"PORTFOLIO_ORDER.FILLED"}}, "", func(events.Message) error { return nil })
		if !errors.Is(err, events.ErrInvalidFilter) {
			t.Errorf("Watch with an unknown family's type = %v, want events.ErrInvalidFilter", err)
		}
	})
}

func TestReceiverRejects(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		good := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
		forger := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6) // same kid, another key
		url := newTestReceiver(t, l, newKeySource(good), WithMaxBody(4096))
		ag := uuid.NewString()
		valid := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ag), rawEvent("TOPUP.CANCELLED", ag))
		var big []map[string]any
		for len(eventstest.DeliveryBody(t, big...)) <= 4096 {
			big = append(big, rawEvent("TOPUP.SETTLED", ag))
		}

		tests := []struct {
			name   string
			req    func() *http.Request
			status int
			detail string
		}{
			{"unsigned", func() *http.Request { return eventstest.NewDelivery(t, url, nil, valid) }, 401, "missing_signature"},
			{"forged", func() *http.Request { return eventstest.NewDelivery(t, url, forger, valid) }, 401, "bad_signature"},
			{"tampered body", func() *http.Request {
				r := eventstest.NewDelivery(t, url, good, valid)
				tampered := bytes.Replace(valid, []byte("TOPUP.CANCELLED"), []byte("TOPUP.CONFIRMED"), 1)
				r.Body = io.NopCloser(bytes.NewReader(tampered))
				return r
			}, 401, "digest_mismatch"},
			{"tampered method", func() *http.Request {
				r := eventstest.NewDelivery(t, url, good, valid)
				r.Method = http.MethodPut
				return r
			}, 405, ""},
			{"signature older than the maximum age", func() *http.Request {
				s := newTestSignerAt(t, good, time.Now().Add(-DefaultMaxSignatureAge-time.Hour))
				return eventstest.NewDelivery(t, url, s, valid)
			}, 401, "expired"},
			{"signature created in the future beyond the skew", func() *http.Request {
				s := newTestSignerAt(t, good, time.Now().Add(MaxClockSkew+time.Minute))
				return eventstest.NewDelivery(t, url, s, valid)
			}, 401, "not_yet_valid"},
			{"oversize", func() *http.Request { return eventstest.NewDelivery(t, url, good, eventstest.DeliveryBody(t, big...)) }, 413, ""},
			{"oversize chunked", func() *http.Request {
				r := eventstest.NewDelivery(t, url, nil, eventstest.DeliveryBody(t, big...))
				r.ContentLength = -1
				r.Body = io.NopCloser(bytes.NewReader(eventstest.DeliveryBody(t, big...)))
				return r
			}, 413, ""},
			{"get", func() *http.Request {
				r, _ := http.NewRequest(http.MethodGet, url, nil)
				return r
			}, 405, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, body := do(t, tt.req())
				if code != tt.status {
					t.Fatalf("status = %d %s, want %d", code, body, tt.status)
				}
				if !strings.Contains(body, tt.detail) {
					t.Errorf("answer %s does not say %q", body, tt.detail)
				}
			})
		}
		if n, q := storedCount(t, l), len(quarantined(t, l)); n != 0 || q != 0 {
			t.Fatalf("%d events stored and %d quarantined from rejected deliveries", n, q)
		}
		if code, body := post(t, url, good, valid); code != http.StatusOK {
			t.Fatalf("valid delivery = %d %s", code, body)
		}
		if n := storedCount(t, l); n != 2 {
			t.Fatalf("%d events stored, want 2", n)
		}
	})
}

// newTestSignerAt signs with s's key as if at time at.
func newTestSignerAt(t *testing.T, s *eventstest.WebhookSigner, at time.Time) *eventstest.WebhookSigner {
	t.Helper()
	signer, err := httpsig.NewSigner(s.Key, s.KID, httpsig.WithVersion(s.Signer.Version()), httpsig.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	return &eventstest.WebhookSigner{KID: s.KID, Key: s.Key, Signer: signer}
}

// An unknown key id makes the receiver fetch the keys again, but never
// sooner than the refetch interval after the last fetch.
func TestReceiverUnknownKeyID(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	good := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ks := newKeySource(good)
	clock := newTestClock()
	url := newTestReceiver(t, l, ks, WithClock(clock.now), WithKeyRefetch(time.Minute, time.Hour))
	stranger := eventstest.NewWebhookSigner(t, "kid-2", httpsig.Version6)

	steps := []struct {
		advance time.Duration
		s       *eventstest.WebhookSigner
		code    int
		calls   int32
	}{
		{0, good, 200, 1},               // first delivery fills the cache
		{0, stranger, 401, 1},           // unknown kid, but the keys were just fetched
		{time.Minute, stranger, 401, 2}, // a minute on: one refetch, still unknown
		{time.Second, stranger, 401, 2}, // no second refetch within the interval
		{0, good, 200, 2},               // known keys cost nothing
		{2 * time.Minute, stranger, 401, 3},
	}
	for i, st := range steps {
		clock.advance(st.advance)
		body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
		if code, resp := post(t, url, newTestSignerAt(t, st.s, clock.now()), body); code != st.code {
			t.Fatalf("step %d: status %d %s, want %d", i, code, resp, st.code)
		}
		if c := ks.calls.Load(); c != st.calls {
			t.Fatalf("step %d: %d key fetches, want %d", i, c, st.calls)
		}
	}

	// Upvest rotates its key: the new kid is fetched once the interval has
	// passed, and from then on known.
	m := map[string]crypto.PublicKey{good.KID: good.Key.Public(), stranger.KID: stranger.Key.Public()}
	ks.keys.Store(&m)
	clock.advance(time.Minute)
	for i := range 3 {
		body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
		if code, resp := post(t, url, newTestSignerAt(t, stranger, clock.now()), body); code != 200 {
			t.Fatalf("rotated key, delivery %d: %d %s", i, code, resp)
		}
	}
	if c := ks.calls.Load(); c != 4 {
		t.Fatalf("%d key fetches, want 4", c)
	}
}

// Key fetch failures are ours, not the sender's: 503, so Upvest retries;
// the next fetch waits a short backoff, and the retry then succeeds.
func TestReceiverKeysUnavailable(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	good := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ks := newKeySource(good)
	ks.fail.Store(true)
	clock := newTestClock()
	url := newTestReceiver(t, l, ks, WithClock(clock.now))
	send := func() (int, string) {
		return post(t, url, newTestSignerAt(t, good, clock.now()), eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", "")))
	}
	if code, resp := send(); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s, want 503", code, resp)
	}
	if n := storedCount(t, l); n != 0 {
		t.Fatalf("%d stored", n)
	}
	ks.fail.Store(false)
	if code, resp := send(); code != http.StatusServiceUnavailable || ks.calls.Load() != 1 {
		t.Fatalf("status %d %s with %d fetches right after a failed fetch, want 503 and no new fetch", code, resp, ks.calls.Load())
	}
	clock.advance(keyRetryBackoff)
	if code, resp := send(); code != http.StatusOK {
		t.Fatalf("status %d %s after keys are back", code, resp)
	}
}

// testClock is a clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestKeyCacheSingleFlight(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	c := &keyCache{
		source: func(ctx context.Context) (map[string]crypto.PublicKey, error) {
			calls.Add(1)
			<-release
			return map[string]crypto.PublicKey{"k": "key"}, nil
		},
		now:      time.Now,
		interval: time.Minute,
		maxAge:   time.Hour,
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			kid := "k"
			if i%2 == 0 {
				kid = "unknown"
			}
			_, err := c.resolve(context.Background(), kid)
			if (kid == "k") != (err == nil) {
				errs <- err
			}
		}(i)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("resolve: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	// A caller that gives up does not cancel the fetch for the others.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.resolve(ctx, "another"); !errors.Is(err, context.Canceled) && !errors.Is(err, errKeyFetchThrottle) {
		t.Errorf("resolve with a cancelled context = %v", err)
	}
}

// swapLog lets a test replace the log behind a running receiver.
type swapLog struct{ p atomic.Pointer[testLog] }

func (s *swapLog) Append(ctx context.Context, evs []events.Event) error {
	return s.p.Load().Append(ctx, evs)
}

// While the log is down deliveries get 503 and nothing is stored; once it is
// back, Upvest's retry of the same delivery is stored.
func TestReceiverLogDown(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		cfg := backendConfig(t, be)
		l := openLog(t, cfg)
		var sw swapLog
		sw.p.Store(l)
		good := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
		url := newTestReceiverOn(t, &sw, l.quarantine, newKeySource(good), WithAppendTimeout(2*time.Second))
		body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""), rawEvent("TOPUP.CANCELLED", ""))

		l.close()
		if code, resp := post(t, url, good, body); code != http.StatusServiceUnavailable {
			t.Fatalf("log down: %d %s, want 503", code, resp)
		}
		l = openLog(t, cfg)
		if n := storedCount(t, l); n != 0 {
			t.Fatalf("%d events stored while the log was down", n)
		}
		sw.p.Store(l)
		if code, resp := post(t, url, good, body); code != http.StatusOK {
			t.Fatalf("log back: %d %s, want 200", code, resp)
		}
		if n := storedCount(t, l); n != 2 {
			t.Fatalf("%d events stored, want 2", n)
		}
	})
}

// The receiver's clock sets the signature's validity window and the age of
// the cached keys.
func TestReceiverClock(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	s := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ks := newKeySource(s)
	var now atomic.Int64
	now.Store(time.Now().Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	url := newTestReceiver(t, l, ks, WithClock(clock), WithKeyRefetch(time.Minute, 10*time.Minute), WithMaxSignatureAge(30*time.Minute))
	body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))

	if code, resp := post(t, url, newTestSignerAt(t, s, clock()), body); code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	now.Add(3600) // the receiver's clock is an hour ahead of the signer
	if code, resp := post(t, url, newTestSignerAt(t, s, clock().Add(-time.Hour)), body); code != 401 || !strings.Contains(resp, "expired") {
		t.Fatalf("stale signature: %d %s", code, resp)
	}
	if code, resp := post(t, url, newTestSignerAt(t, s, clock()), body); code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	if c := ks.calls.Load(); c != 2 {
		t.Errorf("%d key fetches, want 2 (the keys aged out)", c)
	}
}

// Each delivery is logged with its verdict, event counts and key id, and
// each quarantined event with its record id and reason, never with a body.
func TestReceiverLogsNoBody(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	s := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	var buf logtest.Buffer
	srv := httptest.NewServer(NewReceiver(l, l.quarantine, newKeySource(s).fetch, WithLogger(slog.New(slog.NewTextHandler(&buf, nil)))))
	t.Cleanup(srv.Close)
	ev := rawEvent("TOPUP.SETTLED", uuid.NewString())
	bad := rawEvent("TOPUP.SETTLED", "")
	bad["id"] = "secret-looking-id"
	for _, body := range [][]byte{eventstest.DeliveryBody(t, ev), eventstest.DeliveryBody(t, ev, bad)} {
		post(t, srv.URL, s, body)
	}
	post(t, srv.URL, nil, eventstest.DeliveryBody(t, ev))
	out := buf.String()
	for _, want := range []string{"verdict=stored", "quarantined=1", "reason=\"payload[1].id: not a UUID\"", "verdict=unauthorized", "keyid=kid-1", "events=1",
		"no webhook subscription ids known"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{ev["id"].(string), ev["object"].(map[string]any)["account_group_id"].(string), "secret-looking-id"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

// An event the log refuses for good (a *events.DeliveryError naming it) is
// quarantined, the rest of the delivery stored, and the delivery answered
// 200: not a 400 that would stall it, nor a 503 that Upvest retries forever.
func TestReceiverAppendRefusalIsQuarantined(t *testing.T) {
	l := openBackend(t, eventstest.Backend{Name: "embedded"})
	signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ag := uuid.NewString()
	first, victim, last := rawEvent("TOPUP.SETTLED", ag), rawEvent("TOPUP.SETTLED", ag), rawEvent("TOPUP.SETTLED", ag)
	// A log that refuses one event, as a stricter log (or a change to
	// ParseEvent letting through what the log cannot store) would.
	app := appenderFunc(func(ctx context.Context, evs []events.Event) error {
		for i := range evs {
			if evs[i].ID == victim["id"] {
				evs[i].CreatedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
			}
		}
		return l.Append(ctx, evs)
	})
	url := newTestReceiverOn(t, app, l.quarantine, newKeySource(signer))
	if code, body := post(t, url, signer, eventstest.DeliveryBody(t, first, victim, last)); code != http.StatusOK {
		t.Fatalf("delivery = %d %s, want 200", code, body)
	}
	if n := storedCount(t, l); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
	recs := quarantined(t, l)
	if len(recs) != 1 || recs[0].Index != 1 || recs[0].EventID != victim["id"] || !strings.Contains(recs[0].Reason, "payload[1]") {
		t.Fatalf("quarantine %+v, want the refused event at payload[1]", recs)
	}
}
