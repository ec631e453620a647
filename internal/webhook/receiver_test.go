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

func newTestReceiver(t *testing.T, app Appender, ks *keySource, opts ...Option) string {
	t.Helper()
	opts = append([]Option{WithLogger(testLogger(t))}, opts...)
	srv := httptest.NewServer(NewReceiver(app, ks.fetch, opts...))
	t.Cleanup(srv.Close)
	return srv.URL + "/webhooks/upvest"
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
		bad := rawEvent("TOPUP.SETTLED", ag)
		bad["created_at"] = "not a time"
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
			{"expired signature", func() *http.Request {
				s := newTestSignerAt(t, good, time.Now().Add(-time.Hour))
				return eventstest.NewDelivery(t, url, s, valid)
			}, 401, "expired"},
			{"malformed json", func() *http.Request { return eventstest.NewDelivery(t, url, good, []byte(`{"payload":[{`)) }, 400, ""},
			{"one bad event", func() *http.Request {
				return eventstest.NewDelivery(t, url, good, eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ag), bad, rawEvent("TOPUP.SETTLED", ag)))
			}, 400, "payload[1].created_at"},
			{"created_at out of range in UTC", func() *http.Request {
				out := rawEvent("TOPUP.SETTLED", ag)
				out["created_at"] = "0000-01-01T00:30:00+01:00"
				return eventstest.NewDelivery(t, url, good, eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ag), out))
			}, 400, "payload[1].created_at"},
			{"empty body", func() *http.Request { return eventstest.NewDelivery(t, url, good, nil) }, 400, ""},
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
		if n := storedCount(t, l); n != 0 {
			t.Fatalf("%d events stored from rejected deliveries", n)
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

// An unknown key id makes the receiver fetch the keys again, once; further
// unknown ids within the refetch interval cost no fetch.
func TestReceiverUnknownKeyID(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	good := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ks := newKeySource(good)
	url := newTestReceiver(t, l, ks)
	stranger := eventstest.NewWebhookSigner(t, "kid-2", httpsig.Version6)
	body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))

	steps := []struct {
		s     *eventstest.WebhookSigner
		code  int
		calls int32
	}{
		{good, 200, 1},     // first delivery fills the cache
		{stranger, 401, 2}, // unknown kid: one refetch, still unknown
		{stranger, 401, 2}, // no second refetch within the interval
		{good, 200, 2},
	}
	for i, st := range steps {
		if code, resp := post(t, url, st.s, body); code != st.code {
			t.Fatalf("step %d: status %d %s, want %d", i, code, resp, st.code)
		}
		if c := ks.calls.Load(); c != st.calls {
			t.Fatalf("step %d: %d key fetches, want %d", i, c, st.calls)
		}
	}

	// Upvest rotates its key: the new kid is fetched on first sight.
	ks2 := newKeySource(good)
	url2 := newTestReceiver(t, l, ks2)
	if code, _ := post(t, url2, good, body); code != 200 {
		t.Fatal(code)
	}
	m := map[string]crypto.PublicKey{good.KID: good.Key.Public(), stranger.KID: stranger.Key.Public()}
	ks2.keys.Store(&m)
	if code, resp := post(t, url2, stranger, eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))); code != 200 {
		t.Fatalf("rotated key: %d %s", code, resp)
	}
	if c := ks2.calls.Load(); c != 2 {
		t.Fatalf("%d key fetches, want 2", c)
	}
}

// Key fetch failures are ours, not the sender's: 503, so Upvest retries.
func TestReceiverKeysUnavailable(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	good := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ks := newKeySource(good)
	ks.fail.Store(true)
	url := newTestReceiver(t, l, ks)
	body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
	if code, resp := post(t, url, good, body); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s, want 503", code, resp)
	}
	if n := storedCount(t, l); n != 0 {
		t.Fatalf("%d stored", n)
	}
	ks.fail.Store(false)
	if code, resp := post(t, url, good, body); code != http.StatusOK {
		t.Fatalf("status %d %s after keys are back", code, resp)
	}
}

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
		url := newTestReceiver(t, &sw, newKeySource(good), WithAppendTimeout(2*time.Second))
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
	url := newTestReceiver(t, l, ks, WithClock(clock), WithKeyRefetch(time.Minute, 10*time.Minute))
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

// Each delivery is logged with its verdict, event count and key id, never
// with its body.
func TestReceiverLogsNoBody(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	s := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	var buf logtest.Buffer
	srv := httptest.NewServer(NewReceiver(l, newKeySource(s).fetch, WithLogger(slog.New(slog.NewTextHandler(&buf, nil)))))
	t.Cleanup(srv.Close)
	ev := rawEvent("TOPUP.SETTLED", uuid.NewString())
	bad := rawEvent("TOPUP.SETTLED", "")
	bad["id"] = "secret-looking-id"
	for _, body := range [][]byte{eventstest.DeliveryBody(t, ev), eventstest.DeliveryBody(t, ev, bad)} {
		post(t, srv.URL, s, body)
	}
	post(t, srv.URL, nil, eventstest.DeliveryBody(t, ev))
	out := buf.String()
	for _, want := range []string{"verdict=stored", "verdict=bad_request", "verdict=unauthorized", "keyid=kid-1", "events=1"} {
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

// A delivery the log refuses is a 400 that stores nothing, not a 503 that
// Upvest retries forever.
func TestReceiverAppendRefusalIsBadRequest(t *testing.T) {
	l := openBackend(t, eventstest.Backend{Name: "embedded"})
	signer := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ag := uuid.NewString()
	bad := makeEvents(t, 2, "TOPUP.SETTLED", ag)
	bad[1].CreatedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
	// The events ParseDelivery returns are replaced by ones Append refuses,
	// as a change to ParseDelivery might let through.
	app := appenderFunc(func(ctx context.Context, _ []events.Event) error { return l.Append(ctx, bad) })
	url := newTestReceiver(t, app, newKeySource(signer))
	code, body := post(t, url, signer, eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ag), rawEvent("TOPUP.SETTLED", ag)))
	if code != http.StatusBadRequest || !strings.Contains(body, "payload[1]") {
		t.Fatalf("delivery = %d %s, want 400 naming payload[1]", code, body)
	}
	if n := storedCount(t, l); n != 0 {
		t.Fatalf("%d events stored from a refused delivery", n)
	}
}
