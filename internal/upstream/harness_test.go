package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// The tests run the client against a real HTTP server on loopback that checks
// what a real Upvest checks: v15 signatures (with the public half of a key
// made for the test), issued bearer tokens and their expiry.

const (
	testClientID = "0b7f3e8e-4d0a-4a57-9a3e-2d1f6f9c7a11"
	testSecret   = "Sup3r-Secret-Client-Value-0123456789"
	testKeyID    = "gateway-test-key"
)

// recorded is one request as the server saw it.
type recorded struct {
	Method    string
	Path      string // escaped
	RawQuery  string
	Header    http.Header
	Body      []byte
	Form      url.Values // token requests
	Verified  *httpsig.Verified
	VerifyErr error
	Token     string // bearer token presented (API requests)
}

// fakeUpstream is a loopback Upvest: /auth/token issues tokens, everything
// else is handed to api after the signature and token are checked.
type fakeUpstream struct {
	t      *testing.T
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	signer *httpsig.Signer

	mu        sync.Mutex
	tokenReqs []recorded
	apiReqs   []recorded
	issued    map[string]time.Time // token -> expiry (zero: none)
	revoked   map[int]bool         // token numbers answered with 401
	expiresIn int
	// tokenDelay slows the token endpoint, so concurrent callers overlap.
	tokenDelay time.Duration
	// tokenFail, when set, answers the n-th token request (1-based) instead
	// of issuing a token; it returns false to issue one after all.
	tokenFail func(w http.ResponseWriter, n int) bool
	// api answers the n-th API request (1-based) whose signature and token
	// checked out; nil answers 200 {}.
	api func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := httpsig.NewSigner(key, testKeyID)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{
		t:         t,
		key:       key,
		signer:    signer,
		issued:    map[string]time.Time{},
		revoked:   map[int]bool{},
		expiresIn: 1799,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := New(Config{
		BaseURL:      f.srv.URL,
		ClientID:     testClientID,
		ClientSecret: testSecret,
		Signer:       f.signer,
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tokenName(n int) string { return fmt.Sprintf("access-token.%06d", n) }

func requestID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func (f *fakeUpstream) resolver() httpsig.KeyResolver {
	return httpsig.StaticKeys(map[string]crypto.PublicKey{testKeyID: f.key.Public()})
}

func (f *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("server: reading body: %v", err)
		return
	}
	rec := recorded{
		Method:   r.Method,
		Path:     r.URL.EscapedPath(),
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     body,
	}
	rec.Verified, rec.VerifyErr = httpsig.Verify(r.Context(), r, body, f.resolver(), httpsig.VerifyOptions{
		Required: []string{"@method", "@path", "accept", "upvest-client-id"},
	})
	if r.URL.Path == "/auth/token" {
		f.serveToken(w, r, rec)
		return
	}

	f.mu.Lock()
	if tok, ok := bearer(r.Header.Get("Authorization")); ok {
		rec.Token = tok
	}
	f.apiReqs = append(f.apiReqs, rec)
	n := len(f.apiReqs)
	tokenOK := f.tokenValidLocked(rec.Token)
	api := f.api
	f.mu.Unlock()

	w.Header().Set("Upvest-Request-Id", requestID(n))
	switch {
	case rec.VerifyErr != nil:
		problem(w, http.StatusUnauthorized, "unauthorized", "bad signature: "+httpsig.ReasonOf(rec.VerifyErr))
	case !tokenOK:
		problem(w, http.StatusUnauthorized, "unauthorized", "")
	case api == nil:
		writeJSON(w, http.StatusOK, `{}`)
	default:
		api(w, r, n)
	}
}

func (f *fakeUpstream) serveToken(w http.ResponseWriter, r *http.Request, rec recorded) {
	form, err := url.ParseQuery(string(rec.Body))
	if err != nil {
		f.t.Errorf("server: token form: %v", err)
	}
	rec.Form = form
	f.mu.Lock()
	f.tokenReqs = append(f.tokenReqs, rec)
	n := len(f.tokenReqs)
	delay, fail, exp := f.tokenDelay, f.tokenFail, f.expiresIn
	f.mu.Unlock()

	time.Sleep(delay)
	w.Header().Set("Upvest-Request-Id", requestID(1000+n))
	if fail != nil && fail(w, n) {
		return
	}
	if rec.VerifyErr != nil {
		problem(w, http.StatusUnauthorized, "unauthorized", "bad signature: "+rec.VerifyErr.Error())
		return
	}
	if form.Get("client_secret") != testSecret || form.Get("client_id") != testClientID {
		problem(w, http.StatusUnauthorized, "unauthorized", "bad credentials")
		return
	}
	tok := tokenName(n)
	f.mu.Lock()
	if exp > 0 {
		f.issued[tok] = time.Now().Add(time.Duration(exp) * time.Second)
	} else {
		f.issued[tok] = time.Time{}
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"access_token":%q,"expires_in":%d,"token_type":"bearer","scope":%q}`,
		tok, exp, form.Get("scope")))
}

func (f *fakeUpstream) tokenValidLocked(tok string) bool {
	exp, ok := f.issued[tok]
	if !ok {
		return false
	}
	var n int
	fmt.Sscanf(tok, "access-token.%d", &n)
	if f.revoked[n] {
		return false
	}
	return exp.IsZero() || time.Now().Before(exp)
}

func bearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || h[:len(p)] != p {
		return "", false
	}
	return h[len(p):], true
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func problem(w http.ResponseWriter, status int, typ, detail string) {
	b, _ := json.Marshal(map[string]any{
		"type":   "https://docs.upvest.co/errors/" + typ,
		"status": status,
		"title":  http.StatusText(status),
		"detail": detail,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(b)
}

// with changes the server's behaviour under its lock.
func (f *fakeUpstream) with(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeUpstream) setTokenFail(fn func(w http.ResponseWriter, n int) bool) {
	f.with(func() { f.tokenFail = fn })
}

func (f *fakeUpstream) setAPI(h func(w http.ResponseWriter, r *http.Request, n int)) {
	f.mu.Lock()
	f.api = h
	f.mu.Unlock()
}

func (f *fakeUpstream) apiRequests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.apiReqs)
}

func (f *fakeUpstream) tokenRequests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tokenReqs)
}

// fastRetry keeps retry tests quick; only the number of attempts matters.
var fastRetry = WithRetry(RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sequence answers the n-th API request with statuses[n-1] (a problem), and
// with 200 and okBody after the list is exhausted.
func sequence(okBody string, statuses ...int) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= len(statuses) {
			problem(w, statuses[n-1], "test", "")
			return
		}
		writeJSON(w, http.StatusOK, okBody)
	}
}
