package upstream

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTokenRequest(t *testing.T) {
	f := newFakeUpstream(t)
	c := f.client(t)
	if _, err := c.GetCashBalance(testContext(t), agID); err != nil {
		t.Fatal(err)
	}
	toks := f.tokenRequests()
	if len(toks) != 1 {
		t.Fatalf("%d token requests", len(toks))
	}
	r := toks[0]
	if r.Method != "POST" || r.Path != "/auth/token" || r.RawQuery != "" {
		t.Errorf("token request %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	if r.VerifyErr != nil {
		t.Fatalf("token request signature: %v", r.VerifyErr)
	}
	want := []string{"@method", "@path", "accept", "content-type", "content-length", "content-digest", "upvest-client-id"}
	if !slices.Equal(r.Verified.Components, want) {
		t.Errorf("token request covers %q, want %q", r.Verified.Components, want)
	}
	if v := r.Header.Values("Authorization"); len(v) != 0 {
		t.Errorf("token request carries authorization %q", v)
	}
	for k, v := range map[string]string{
		"Accept":             "application/json",
		"Upvest-Client-Id":   testClientID,
		"Upvest-Api-Version": "1",
		"Content-Type":       "application/x-www-form-urlencoded",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	form := map[string]string{
		"grant_type":    "client_credentials",
		"client_id":     testClientID,
		"client_secret": testSecret,
		"scope":         "virtual_cash_balances:admin topups:admin payments:admin positions:read webhooks:read",
	}
	for k, v := range form {
		if got := r.Form[k]; len(got) != 1 || got[0] != v {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
	if len(r.Form) != len(form) {
		t.Errorf("form has extra fields: %v", slices.Collect(func(yield func(string) bool) {
			for k := range r.Form {
				if !yield(k) {
					return
				}
			}
		}))
	}
}

func TestTokenCustomScopes(t *testing.T) {
	f := newFakeUpstream(t)
	c, err := New(Config{BaseURL: f.srv.URL, ClientID: testClientID, ClientSecret: testSecret, Signer: f.signer, Scopes: []string{"positions:read"}})
	if err != nil {
		t.Fatal(err)
	}
	c.GetCashBalance(testContext(t), agID)
	if got := f.tokenRequests()[0].Form.Get("scope"); got != "positions:read" {
		t.Errorf("scope %q", got)
	}
}

// runConcurrently makes n calls at once and returns their errors.
func runConcurrently(n int, call func() error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = call()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func TestTokenColdCacheSingleFlight(t *testing.T) {
	f := newFakeUpstream(t)
	f.with(func() { f.tokenDelay = 100 * time.Millisecond }) // everyone arrives while the request is in flight
	c := f.client(t)
	ctx := testContext(t)
	for i, err := range runConcurrently(50, func() error { _, err := c.GetTopup(ctx, "x"); return err }) {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := len(f.tokenRequests()); n != 1 {
		t.Errorf("%d token requests for 50 concurrent calls, want 1", n)
	}
	for _, r := range f.apiRequests() {
		if r.Token != tokenName(1) {
			t.Errorf("API request with token %q", r.Token)
		}
	}
}

func TestTokenExpiry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expiresIn int
		opts      []Option
		wait      time.Duration
	}{
		// Refreshed once expired.
		{"expired", 1, []Option{WithTokenEarlyExpiry(0)}, 1100 * time.Millisecond},
		// Refreshed before expiry: the early margin (capped at half the
		// lifetime, 1s here) has passed, the token itself has not expired.
		{"early", 2, nil, 1200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUpstream(t)
			f.with(func() { f.expiresIn = tc.expiresIn })
			c := f.client(t, tc.opts...)
			ctx := testContext(t)
			if _, err := c.GetTopup(ctx, "x"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.wait)
			for _, err := range runConcurrently(10, func() error { _, err := c.GetTopup(ctx, "x"); return err }) {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := len(f.tokenRequests()); n != 2 {
				t.Errorf("%d token requests, want 2 (one refresh)", n)
			}
			reqs := f.apiRequests()
			if len(reqs) != 11 {
				t.Errorf("%d API requests, want 11 (no 401)", len(reqs))
			}
			for _, r := range reqs[1:] {
				if r.Token != tokenName(2) {
					t.Errorf("after refresh, API request with %q", r.Token)
				}
			}
		})
	}
}

// Between the early refresh point and the hard margin the old token keeps
// being used while the new one is fetched in the background.
func TestTokenBackgroundRefresh(t *testing.T) {
	f := newFakeUpstream(t)
	f.with(func() { f.tokenDelay = 200 * time.Millisecond })
	c := f.client(t)
	var offset atomic.Int64
	c.tokens.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ctx := testContext(t)
	if _, err := c.GetTopup(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(1799*time.Second - 45*time.Second)) // inside the 60s early window, outside the 10s hard one
	start := time.Now()
	if _, err := c.GetTopup(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Logf("call took %v; it should not wait for the refresh", d)
	}
	if r := f.apiRequests()[1]; r.Token != tokenName(1) {
		t.Errorf("second call used %q, want the old token", r.Token)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(f.tokenRequests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the answer land in the cache
	if _, err := c.GetTopup(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.tokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	if r := f.apiRequests()[2]; r.Token != tokenName(2) {
		t.Errorf("third call used %q, want the refreshed token", r.Token)
	}
}

func TestUnauthorizedForcesOneRefresh(t *testing.T) {
	f := newFakeUpstream(t)
	f.with(func() { f.revoked[1] = true }) // issued, then refused
	c := f.client(t, fastRetry)
	var info ResponseInfo
	if _, err := c.CreateTopup(testContext(t), CreateTopupRequest{}, WithResponseInfo(&info)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.tokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	reqs := f.apiRequests()
	if len(reqs) != 2 || reqs[0].Token != tokenName(1) || reqs[1].Token != tokenName(2) {
		t.Fatalf("API requests %d", len(reqs))
	}
	if reqs[0].Header.Get("Idempotency-Key") != reqs[1].Header.Get("Idempotency-Key") {
		t.Error("the re-sent request has another idempotency-key")
	}
	if info.Attempts != 2 || info.StatusCode != 200 {
		t.Errorf("ResponseInfo %+v", info)
	}
}

func TestUnauthorizedTwice(t *testing.T) {
	f := newFakeUpstream(t)
	f.with(func() { f.revoked[1], f.revoked[2], f.revoked[3] = true, true, true })
	c := f.client(t, fastRetry)
	var info ResponseInfo
	_, err := c.GetTopup(testContext(t), "x", WithResponseInfo(&info))
	e, ok := AsError(err)
	if !ok || e.StatusCode != 401 || !e.Refreshed {
		t.Fatalf("err %v, want *Error 401 Refreshed", err)
	}
	if errors.Is(err, ErrTokenRequest) {
		t.Error("an API 401 is marked as a token request failure")
	}
	if nt, na := len(f.tokenRequests()), len(f.apiRequests()); nt != 2 || na != 2 {
		t.Errorf("%d token and %d API requests, want 2 and 2", nt, na)
	}
	if info.Attempts != 2 || info.StatusCode != 401 || info.RequestID != requestID(2) {
		t.Errorf("ResponseInfo %+v", info)
	}
}

// The one forced refresh is per call: a 401 on a later attempt, after the
// refresh was spent, ends the call.
func TestUnauthorizedAfterRefreshOnLaterAttempt(t *testing.T) {
	f := newFakeUpstream(t)
	f.with(func() { f.revoked[1] = true })
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 2 {
			problem(w, 503, "service_unavailable", "")
			return
		}
		problem(w, 401, "unauthorized", "")
	})
	_, err := f.client(t, fastRetry).CreateTopup(testContext(t), CreateTopupRequest{})
	if e, ok := AsError(err); !ok || e.StatusCode != 401 || !e.Refreshed {
		t.Fatalf("err %v, want *Error 401 Refreshed", err)
	}
	if nt, na := len(f.tokenRequests()), len(f.apiRequests()); nt != 2 || na != 3 {
		t.Errorf("%d token and %d API requests, want 2 and 3", nt, na)
	}
}

func TestConcurrentUnauthorizedOneRefresh(t *testing.T) {
	f := newFakeUpstream(t)
	f.with(func() { f.revoked[1], f.tokenDelay = true, 50*time.Millisecond })
	c := f.client(t)
	ctx := testContext(t)
	for i, err := range runConcurrently(50, func() error { _, err := c.GetCashBalance(ctx, agID); return err }) {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := len(f.tokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2 (the first, and one refresh for all the 401s)", n)
	}
	refused := 0
	for _, r := range f.apiRequests() {
		if r.Token == tokenName(1) {
			refused++
		}
	}
	t.Logf("%d of 50 calls got a 401 first", refused)
	if refused < 2 {
		t.Errorf("only %d calls saw the 401; the test did not exercise concurrency", refused)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		ctype    string
		body     string
		wantType string
	}{
		{"problem echoing the secret", 401, "application/problem+json",
			`{"type":"https://docs.upvest.co/errors/unauthorized","status":401,"detail":"client_secret ` + testSecret + ` is wrong"}`,
			"https://docs.upvest.co/errors/unauthorized"},
		{"oauth2 error", 400, "application/json",
			`{"error":"invalid_client","error_description":"bad secret ` + testSecret + `"}`, "invalid_client"},
		{"html", 403, "text/html", `<html><body>Forbidden: ` + testSecret + `</body></html>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUpstream(t)
			f.with(func() {
				f.tokenFail = func(w http.ResponseWriter, n int) bool {
					w.Header().Set("Content-Type", tc.ctype)
					w.WriteHeader(tc.status)
					w.Write([]byte(tc.body))
					return true
				}
			})
			_, err := f.client(t, fastRetry).CreateTopup(testContext(t), CreateTopupRequest{})
			if !errors.Is(err, ErrTokenRequest) {
				t.Fatalf("err %v, want ErrTokenRequest", err)
			}
			e, ok := AsError(err)
			if !ok || e.StatusCode != tc.status || e.Type != tc.wantType || e.Refreshed {
				t.Fatalf("err %#v", e)
			}
			if e.RequestID != requestID(1001) {
				t.Errorf("request id %q", e.RequestID)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(e.Detail, testSecret) {
				t.Errorf("secret in error: %v", err)
			}
			if n := len(f.tokenRequests()); n != 1 {
				t.Errorf("%d token requests, want 1 (not retried)", n)
			}
			if n := len(f.apiRequests()); n != 0 {
				t.Errorf("%d API requests without a token", n)
			}
		})
	}
}

func TestTokenEndpointRetried(t *testing.T) {
	f := newFakeUpstream(t)
	f.setTokenFail(func(w http.ResponseWriter, n int) bool {
		if n == 1 {
			problem(w, 503, "service_unavailable", "")
			return true
		}
		return false
	})
	if _, err := f.client(t, fastRetry).GetTopup(testContext(t), "x"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.tokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestTokenMalformedAnswer(t *testing.T) {
	f := newFakeUpstream(t)
	f.setTokenFail(func(w http.ResponseWriter, n int) bool {
		writeJSON(w, 200, `{"access_token":"has space\r\nX-Evil: 1","expires_in":60}`)
		return true
	})
	_, err := f.client(t, fastRetry).GetTopup(testContext(t), "x")
	if !errors.Is(err, ErrTokenRequest) || strings.Contains(err.Error(), "has space") {
		t.Fatalf("err %v", err)
	}
	if len(f.apiRequests()) != 0 {
		t.Error("a malformed token was sent")
	}
}

// A token answer that cannot be read is asked for again, like a lost one.
func TestTokenUnreadableAnswerRetried(t *testing.T) {
	f := newFakeUpstream(t)
	f.setTokenFail(func(w http.ResponseWriter, n int) bool {
		if n == 1 {
			writeJSON(w, 200, `{"access_token":"abc","expi`)
			return true
		}
		return false
	})
	if _, err := f.client(t, fastRetry).GetTopup(testContext(t), "x"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.tokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}
