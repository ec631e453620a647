package upstream

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

const topupOK = `{"id":"1ab4fef9-a097-4c6f-9345-647025d5fde6","status":"CONFIRMED"}`

func TestRetrySameKeyFreshSignature(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(sequence(topupOK, 503, 503))
	c := f.client(t, fastRetry)
	var info ResponseInfo
	got, err := c.CreateTopup(testContext(t), CreateTopupRequest{AccountGroupID: agID, CashAmount: "1.00", Currency: "EUR"}, WithResponseInfo(&info))
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "CONFIRMED" {
		t.Errorf("decoded %+v", got)
	}
	reqs := f.apiRequests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	key := reqs[0].Header.Get("Idempotency-Key")
	nonces := map[string]bool{}
	for i, r := range reqs {
		if r.VerifyErr != nil {
			t.Fatalf("attempt %d: %v", i+1, r.VerifyErr)
		}
		if got := r.Header.Get("Idempotency-Key"); got != key || key == "" {
			t.Errorf("attempt %d key %q, first %q", i+1, got, key)
		}
		if string(r.Body) != string(reqs[0].Body) {
			t.Errorf("attempt %d body differs", i+1)
		}
		nonces[r.Verified.Nonce] = true
	}
	if len(nonces) != 3 {
		t.Errorf("%d distinct nonces over 3 attempts, want 3", len(nonces))
	}
	if info.Attempts != 3 || info.IdempotencyKey != key || info.StatusCode != 200 || info.RequestID != requestID(3) {
		t.Errorf("ResponseInfo %+v", info)
	}
}

func TestRetriedStatuses(t *testing.T) {
	for _, status := range []int{409, 429, 500, 502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			f := newFakeUpstream(t)
			f.setAPI(sequence(topupOK, status))
			if _, err := f.client(t, fastRetry).CreateTopup(testContext(t), CreateTopupRequest{}); err != nil {
				t.Fatal(err)
			}
			if n := len(f.apiRequests()); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

func TestNotRetried(t *testing.T) {
	for _, status := range []int{400, 403, 404, 406, 422} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			f := newFakeUpstream(t)
			f.setAPI(sequence(topupOK, status, status, status))
			var info ResponseInfo
			_, err := f.client(t, fastRetry).CreateTopup(testContext(t), CreateTopupRequest{}, WithResponseInfo(&info))
			e, ok := AsError(err)
			if !ok || e.StatusCode != status || e.Refreshed || e.RequestID != requestID(1) {
				t.Fatalf("err %v", err)
			}
			if n := len(f.apiRequests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if info.Attempts != 1 || info.StatusCode != status || info.IdempotencyKey == "" {
				t.Errorf("ResponseInfo %+v", info)
			}
		})
	}
}

func TestRetryGetAndDelete(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(sequence(topupOK, 503, 504))
	c := f.client(t, fastRetry)
	if _, err := c.GetTopup(testContext(t), "x"); err != nil {
		t.Fatal(err)
	}
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 4 {
			problem(w, 502, "bad_gateway", "")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if err := c.CancelTopup(testContext(t), "x"); err != nil {
		t.Fatal(err)
	}
	reqs := f.apiRequests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 3 GET + 2 DELETE", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get("Idempotency-Key") != "" {
			t.Errorf("%s carries an idempotency-key", r.Method)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			problem(w, 429, "too_many_requests", "")
			return
		}
		writeJSON(w, 200, topupOK)
	})
	c := f.client(t, fastRetry) // its own backoff is at most 2ms
	start := time.Now()
	if _, err := c.CreateTopup(testContext(t), CreateTopupRequest{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before the 1s Retry-After", d)
	}
	if n := len(f.apiRequests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "3600")
		problem(w, 503, "service_unavailable", "")
	})
	// No deadline (that would end the wait on its own): only the cap can.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(5*time.Second, cancel)
	start := time.Now()
	_, err := f.client(t, fastRetry).GetTopup(ctx, "x")
	e, ok := AsError(err)
	if !ok || e.RetryAfter != time.Hour {
		t.Fatalf("err %v", err)
	}
	if n := len(f.apiRequests()); n != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("%d requests in %v; an hour-long Retry-After should end the retries", n, time.Since(start))
	}
}

// hijackFirst drops the connection of the first API request without an answer.
func hijackFirst(okBody string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			conn.Close()
			return
		}
		writeJSON(w, 200, okBody)
	}
}

func TestRetryDroppedConnection(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(hijackFirst(topupOK))
	c := f.client(t, fastRetry)
	var info ResponseInfo
	if _, err := c.CreateTopup(testContext(t), CreateTopupRequest{}, WithResponseInfo(&info)); err != nil {
		t.Fatal(err)
	}
	reqs := f.apiRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if a, b := reqs[0].Header.Get("Idempotency-Key"), reqs[1].Header.Get("Idempotency-Key"); a != b || a == "" {
		t.Errorf("keys %q, %q", a, b)
	}
	// A replay by net/http itself would repeat the first signature.
	if reqs[0].Verified.Nonce == reqs[1].Verified.Nonce {
		t.Error("the retry re-sent the first signature")
	}
	if info.Attempts != 2 {
		t.Errorf("ResponseInfo %+v", info)
	}
}

// A create whose connection drops after the request left has an unknown
// outcome: it is retried past MaxAttempts until its deadline, and then ends
// with ErrOutcomeUnknown naming the key to retry with.
func TestTransportErrorAfterAttempts(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	var info ResponseInfo
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := f.client(t, fastRetry).CreateTopup(ctx, CreateTopupRequest{},
		WithCallRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}), WithResponseInfo(&info))
	var ou *OutcomeUnknownError
	if !errors.As(err, &ou) || !errors.Is(err, ErrOutcomeUnknown) || ou.IdempotencyKey == "" || ou.IdempotencyKey != info.IdempotencyKey {
		t.Fatalf("err %v, want *OutcomeUnknownError with the key %q", err, info.IdempotencyKey)
	}
	var te *TransportError
	if !errors.As(err, &te) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v keeps neither the last *TransportError nor the deadline", err)
	}
	// The deadline may cut the last attempt off before the server saw it.
	if n := len(f.apiRequests()); n <= 2 || info.Attempts < n || info.Attempts > n+1 || info.StatusCode != 0 {
		t.Errorf("%d requests, info %+v: want more than MaxAttempts", n, info)
	}

	// A read has no outcome to settle: MaxAttempts ends it.
	var te2 *TransportError
	f = newFakeUpstream(t)
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	_, err = f.client(t, fastRetry).GetTopup(testContext(t), "x",
		WithCallRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}), WithResponseInfo(&info))
	if !errors.As(err, &te2) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err %v, want *TransportError", err)
	}
	// (net/http itself may replay a GET on a reused connection, so the
	// server may see more requests than attempts.)
	if info.Attempts != 2 {
		t.Errorf("info %+v, want 2 attempts", info)
	}
}

// A request that never left (nothing listens) cannot have acted: no
// unknown outcome, MaxAttempts ends it.
func TestRefusedConnectionIsNotUnknown(t *testing.T) {
	f := newFakeUpstream(t)
	c := f.client(t, fastRetry)
	f.srv.Close()
	_, err := c.CreateTopup(testContext(t), CreateTopupRequest{}, WithCallRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}))
	var te *TransportError
	if !errors.As(err, &te) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err %v, want a *TransportError that is not ErrOutcomeUnknown", err)
	}
}

func TestMaxAttempts(t *testing.T) {
	for _, max := range []int{1, 3} {
		f := newFakeUpstream(t)
		f.setAPI(sequence(topupOK, 503, 503, 503, 503, 503, 503))
		var info ResponseInfo
		_, err := f.client(t, fastRetry).GetTopup(testContext(t), "x",
			WithCallRetry(RetryPolicy{MaxAttempts: max, InitialBackoff: time.Millisecond}), WithResponseInfo(&info))
		if e, ok := AsError(err); !ok || e.StatusCode != 503 {
			t.Fatalf("MaxAttempts %d: err %v", max, err)
		}
		if n := len(f.apiRequests()); n != max || info.Attempts != max {
			t.Errorf("MaxAttempts %d: %d requests, info %+v", max, n, info)
		}
	}
}

// A deadline that comes before the next attempt ends the call at once, with
// the last answer rather than "deadline exceeded".
func TestDeadlineShorterThanBackoff(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
	}{
		{"backoff", ""},
		{"retry-after", "20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUpstream(t)
			f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				problem(w, 503, "service_unavailable", "")
			})
			c := f.client(t, WithRetry(RetryPolicy{InitialBackoff: 20 * time.Second, MaxBackoff: 20 * time.Second}))
			c.jitter = func(n int64) int64 { return n } // the whole ceiling, no luck involved
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			_, err := c.CreateTopup(ctx, CreateTopupRequest{})
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("returned after %v; the backoff was 20s and the deadline 2s", d)
			}
			e, ok := AsError(err)
			if !ok || e.StatusCode != 503 {
				t.Fatalf("err %v, want the last *Error", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err %v is DeadlineExceeded", err)
			}
			if n := len(f.apiRequests()); n != 1 {
				t.Errorf("%d requests", n)
			}
		})
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(sequence(topupOK, 503, 503))
	c := f.client(t, WithRetry(RetryPolicy{InitialBackoff: 20 * time.Second, MaxBackoff: 20 * time.Second}))
	c.jitter = func(n int64) int64 { return n }
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.GetTopup(ctx, "x")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestBackoff(t *testing.T) {
	p, err := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Multiplier: 2}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	top := func(n int64) int64 { return n }
	for retry, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		if got := p.backoff(retry, 0, top); got != want {
			t.Errorf("ceiling before retry %d: %v, want %v", retry, got, want)
		}
	}
	if got := p.backoff(1, 0, func(int64) int64 { return 0 }); got != 0 {
		t.Errorf("full jitter floor %v", got)
	}
	if got := p.backoff(1, 3*time.Second, top); got != 3*time.Second {
		t.Errorf("Retry-After floor: %v", got)
	}
	for range 1000 {
		if d := p.backoff(3, 0, randInt64N); d < 0 || d > 400*time.Millisecond {
			t.Fatalf("jittered backoff %v outside [0, 400ms]", d)
		}
	}
}

func TestRetryPolicyNormalize(t *testing.T) {
	if p, err := (RetryPolicy{MaxAttempts: 1}).normalize(); err != nil || p.MaxAttempts != 1 || p.Multiplier != 2 || p.InitialBackoff != 100*time.Millisecond {
		t.Errorf("MaxAttempts 1 alone: %+v %v", p, err)
	}
	if p, err := (RetryPolicy{}).normalize(); err != nil || p != DefaultRetryPolicy {
		t.Errorf("zero policy: %+v %v", p, err)
	}
	for _, bad := range []RetryPolicy{
		{MaxAttempts: -1}, {InitialBackoff: -1}, {MaxBackoff: -1}, {Multiplier: 0.5},
		{InitialBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := bad.normalize(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"7":                             7 * time.Second,
		" 7 ":                           7 * time.Second,
		"-1":                            0,
		"1.5":                           0,
		"soon":                          0,
		"99999999999999999999":          0,
		"999999999999":                  24 * time.Hour,
		"Thu, 02 Jan 2025 03:04:15 GMT": 10 * time.Second,
		"Thu, 02 Jan 2025 03:00:00 GMT": 0, // in the past
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// brokenBodyFirst answers the first API request with a 200 whose body breaks
// off, then with okBody.
func brokenBodyFirst(okBody string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			w.Write([]byte(`{"id":`))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		writeJSON(w, 200, okBody)
	}
}

func TestBrokenSuccessBody(t *testing.T) {
	t.Run("GET is retried", func(t *testing.T) {
		f := newFakeUpstream(t)
		f.setAPI(brokenBodyFirst(topupOK))
		got, err := f.client(t, fastRetry).GetTopup(testContext(t), "x")
		if err != nil || got.Status != "CONFIRMED" {
			t.Fatalf("%+v, %v", got, err)
		}
		if n := len(f.apiRequests()); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
	t.Run("create is asked again", func(t *testing.T) {
		f := newFakeUpstream(t)
		f.setAPI(brokenBodyFirst(topupOK))
		got, err := f.client(t, fastRetry).CreateTopup(testContext(t), CreateTopupRequest{})
		if err != nil || got.Status != "CONFIRMED" {
			t.Fatalf("%+v, %v", got, err)
		}
		reqs := f.apiRequests()
		if len(reqs) != 2 || reqs[0].Header.Get("Idempotency-Key") != reqs[1].Header.Get("Idempotency-Key") {
			t.Errorf("%d requests; the retry must carry the same key", len(reqs))
		}
	})
	t.Run("DELETE is done", func(t *testing.T) {
		f := newFakeUpstream(t)
		f.setAPI(brokenBodyFirst(topupOK))
		if err := f.client(t, fastRetry).CancelTopup(testContext(t), "x"); err != nil {
			t.Fatal(err)
		}
		if n := len(f.apiRequests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}
