package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// A flood of 1,000 forged deliveries costs at most the configured number of
// signature verifications (the burst of the sender's budget, the clock
// standing still), the rest are answered 429 with Retry-After before any
// cryptography; Upvest's correctly signed deliveries give their tokens back
// and never use the budget up.
func TestVerificationFlood(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	upvest := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	forger := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6) // Upvest's key id, another key
	clock := newTestClock()
	limits := RateLimits{PerSource: 1, SourceBurst: 5, Global: 100, GlobalBurst: 200}
	url, rc := serveReceiver(t, l, l.quarantine, newKeySource(upvest), WithClock(clock.now), WithRateLimits(limits))

	// Upvest first: many deliveries, none limited.
	for i := range 3 * limits.SourceBurst {
		body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
		if code, resp := post(t, url, newTestSignerAt(t, upvest, clock.now()), body); code != http.StatusOK {
			t.Fatalf("Upvest's delivery %d: %d %s", i, code, resp)
		}
	}
	base := rc.Stats().Verifications

	// 1,000 forged deliveries, 8 at a time.
	body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
	forged := newTestSignerAt(t, forger, clock.now())
	var limited, unauthorized atomic.Int32
	var retryAfter atomic.Value
	var wg sync.WaitGroup
	work := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for range work {
				resp, err := http.DefaultClient.Do(eventstest.NewDelivery(t, url, forged, body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					limited.Add(1)
					retryAfter.Store(resp.Header.Get("Retry-After"))
				case http.StatusUnauthorized:
					unauthorized.Add(1)
				default:
					t.Errorf("forged delivery answered %d", resp.StatusCode)
				}
			}
		})
	}
	for range 1000 {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()

	if n := rc.Stats().Verifications - base; n > uint64(limits.SourceBurst) {
		t.Errorf("1,000 forged deliveries cost %d verifications, want at most %d", n, limits.SourceBurst)
	}
	if unauthorized.Load() > int32(limits.SourceBurst) || limited.Load() < 1000-int32(limits.SourceBurst) {
		t.Errorf("%d answered 401 and %d 429", unauthorized.Load(), limited.Load())
	}
	if ra, _ := retryAfter.Load().(string); ra == "" {
		t.Error("429 without Retry-After")
	} else if n, err := strconv.Atoi(ra); err != nil || n < 1 {
		t.Errorf("Retry-After %q", ra)
	}
	if got := rc.Stats().RateLimited; got != uint64(limited.Load()) {
		t.Errorf("Stats().RateLimited = %d, want %d", got, limited.Load())
	}

	// While the budget is spent Upvest is limited too (a sender is unknown
	// until verified); once it refills, it goes through.
	clock.advance(time.Second)
	if code, resp := post(t, url, newTestSignerAt(t, upvest, clock.now()), eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))); code != http.StatusOK {
		t.Fatalf("Upvest after the flood: %d %s", code, resp)
	}
}

// The global budget bounds verifications across sources.
func TestVerificationGlobalLimit(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	upvest := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	forger := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	clock := newTestClock()
	limits := RateLimits{PerSource: 1, SourceBurst: 2, Global: 1, GlobalBurst: 7}
	rc := NewReceiver(l, l.quarantine, newKeySource(upvest).fetch, WithClock(clock.now), WithRateLimits(limits))
	body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
	forged := newTestSignerAt(t, forger, clock.now())
	codes := map[int]int{}
	for i := range 100 {
		req := eventstest.NewDelivery(t, "http://gateway/webhooks/upvest", forged, body)
		req.RemoteAddr = "192.0.2." + strconv.Itoa(i%50) + ":4000" // 50 sources
		if i%2 == 1 {
			req.RemoteAddr = "[2001:db8:0:" + strconv.Itoa(i%50) + "::1]:4000"
		}
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		codes[w.Code]++
	}
	if n := rc.Stats().Verifications; n != uint64(limits.GlobalBurst) {
		t.Errorf("%d verifications, want the global burst %d", n, limits.GlobalBurst)
	}
	if codes[http.StatusTooManyRequests] != 100-limits.GlobalBurst {
		t.Errorf("answers %v", codes)
	}
}

// The key refetch is throttled in every state of the cache: keys present
// (a forged key id), missing, expired, and the fetch failing. 200 forged
// deliveries cost at most one fetch per refetch interval.
func TestKeyRefetchThrottledInEveryState(t *testing.T) {
	upvest := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	tests := []struct {
		name  string
		setup func(c *keyCache, ks *keySource, clock *testClock)
	}{
		{"keys present", func(c *keyCache, ks *keySource, clock *testClock) {
			c.resolve(context.Background(), "kid-1")
		}},
		{"keys missing, fetch failing", func(c *keyCache, ks *keySource, clock *testClock) {
			ks.fail.Store(true)
		}},
		{"keys expired", func(c *keyCache, ks *keySource, clock *testClock) {
			c.resolve(context.Background(), "kid-1")
			clock.advance(2 * time.Hour)
		}},
		{"keys expired, fetch failing", func(c *keyCache, ks *keySource, clock *testClock) {
			c.resolve(context.Background(), "kid-1")
			clock.advance(2 * time.Hour)
			ks.fail.Store(true)
		}},
		{"fetch failing after keys were present", func(c *keyCache, ks *keySource, clock *testClock) {
			c.resolve(context.Background(), "kid-1")
			clock.advance(time.Minute)
			ks.fail.Store(true)
			c.resolve(context.Background(), "kid-2")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ks := newKeySource(upvest)
			clock := newTestClock()
			c := &keyCache{source: ks.fetch, now: clock.now, interval: 30 * time.Second, maxAge: time.Hour}
			tt.setup(c, ks, clock)
			before := ks.calls.Load()
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					_, err := c.resolve(context.Background(), "forged-"+strconv.Itoa(i))
					if err == nil {
						t.Error("a forged key id resolved")
					}
				})
			}
			wg.Wait()
			if n := ks.calls.Load() - before; n > 1 {
				t.Errorf("200 forged key ids cost %d fetches, want at most 1", n)
			}
			// Another burst within the interval costs nothing.
			before = ks.calls.Load()
			clock.advance(time.Second)
			for i := range 200 {
				c.resolve(context.Background(), "again-"+strconv.Itoa(i))
			}
			if n := ks.calls.Load() - before; n != 0 && !ks.fail.Load() {
				t.Errorf("a second burst cost %d fetches", n)
			} else if n > 1 {
				t.Errorf("a second burst while fetches fail cost %d fetches", n)
			}
		})
	}
}

// As reported: while the key fetch failed, 200 forged deliveries caused 123
// fetches. Now one (the clock standing still: no backoff has passed).
func TestForgedDeliveriesWhileKeyFetchFails(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	upvest := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	ks := newKeySource(upvest)
	ks.fail.Store(true)
	noLimits := RateLimits{PerSource: 1e6, SourceBurst: 1e6, Global: 1e6, GlobalBurst: 1e6}
	clock := newTestClock()
	url := newTestReceiver(t, l, ks, WithRateLimits(noLimits), WithClock(clock.now))
	forger := newTestSignerAt(t, eventstest.NewWebhookSigner(t, "forged-kid", httpsig.Version6), clock.now())
	body := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if code, _ := post(t, url, forger, body); code != http.StatusServiceUnavailable && code != http.StatusUnauthorized {
					t.Errorf("forged delivery answered %d", code)
				}
			}
		})
	}
	wg.Wait()
	if n := ks.calls.Load(); n != 1 {
		t.Errorf("200 forged deliveries caused %d key fetches, want 1", n)
	}
}

// Upvest's deliveries give their tokens back however they overlap: a
// delivery whose verification finished after later deliveries had taken
// tokens (a burst of concurrent deliveries, a stalled process) gets its
// tokens back all the same, so a budget is used up only by deliveries that
// failed verification.
func TestVerifyLimiterRefundsOverlappingDeliveries(t *testing.T) {
	t.Parallel()
	limits := RateLimits{PerSource: 10, SourceBurst: 20, Global: 10, GlobalBurst: 20}
	v := newVerifyLimiter(limits)
	const src = "192.0.2.1:4000"
	t0 := time.Unix(1_700_000_000, 0)
	var refunds []func()
	take := func(now time.Time) bool {
		refund, _, ok := v.take(src, now)
		if ok {
			refunds = append(refunds, refund)
		}
		return ok
	}
	// 20 deliveries in flight at once use up the burst; half a second later
	// the refill lets 5 more start; then all 25 verify.
	for i := range limits.SourceBurst {
		if !take(t0) {
			t.Fatalf("delivery %d of the first burst was limited", i)
		}
	}
	t1 := t0.Add(500 * time.Millisecond)
	for i := range 5 {
		if !take(t1) {
			t.Fatalf("delivery %d after the refill was limited", i)
		}
	}
	for _, refund := range refunds {
		refund()
	}
	refunds = nil
	// Every token came back: a whole burst again, at once.
	for i := range limits.SourceBurst {
		if !take(t1) {
			t.Fatalf("after the refunds, delivery %d of a burst of %d was limited", i, limits.SourceBurst)
		}
	}
	if take(t1) {
		t.Fatal("a delivery beyond the burst was not limited")
	}
}

// A delivery holds its verification tokens only while its signature is
// checked, not while its body arrives: a slow body from a source whose
// budget has one token left does not turn away the source's next delivery.
func TestSlowBodyHoldsNoToken(t *testing.T) {
	l := openBackend(t, eventstest.Backends()[0])
	upvest := eventstest.NewWebhookSigner(t, "kid-1", httpsig.Version6)
	clock := newTestClock()
	limits := RateLimits{PerSource: 1, SourceBurst: 1, Global: 1, GlobalBurst: 1}
	rc := NewReceiver(l, l.quarantine, newKeySource(upvest).fetch, WithClock(clock.now), WithRateLimits(limits))
	signer := newTestSignerAt(t, upvest, clock.now())

	slowBody := eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", ""))
	slow := eventstest.NewDelivery(t, "http://gateway/webhooks/upvest", signer, slowBody)
	pr, pw := io.Pipe()
	reading := make(chan struct{})
	slow.Body = &firstRead{r: pr, started: reading}
	slow.RemoteAddr = "192.0.2.7:4000"
	slowDone := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, slow)
		slowDone <- w.Code
	}()
	<-reading // the slow delivery is in, its body still arriving

	next := eventstest.NewDelivery(t, "http://gateway/webhooks/upvest", signer, eventstest.DeliveryBody(t, rawEvent("TOPUP.SETTLED", "")))
	next.RemoteAddr = slow.RemoteAddr
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, next)
	if w.Code != http.StatusOK {
		t.Fatalf("the next delivery while another's body arrives: %d %s", w.Code, w.Body)
	}

	go func() {
		pw.Write(slowBody)
		pw.Close()
	}()
	if code := <-slowDone; code != http.StatusOK {
		t.Fatalf("the slow delivery: %d", code)
	}
}

// firstRead closes started at its first Read.
type firstRead struct {
	r       io.Reader
	once    sync.Once
	started chan struct{}
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(func() { close(f.started) })
	return f.r.Read(p)
}

func (f *firstRead) Close() error { return nil }
