package upstream

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/logtest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

func testSigner(t testing.TB) *httpsig.Signer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpsig.NewSigner(key, testKeyID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewValidates(t *testing.T) {
	signer := testSigner(t)
	good := Config{BaseURL: "https://sandbox.upvest.co/", ClientID: testClientID, ClientSecret: testSecret, Signer: signer}
	if c, err := New(good); err != nil {
		t.Fatalf("good config: %v", err)
	} else if c.baseURL != "https://sandbox.upvest.co" {
		t.Errorf("base URL %q", c.baseURL)
	}
	for _, base := range []string{"http://127.0.0.1:8080", "http://localhost:1/prefix", "http://[::1]:9"} {
		cfg := good
		cfg.BaseURL = base
		if _, err := New(cfg); err != nil {
			t.Errorf("loopback %s: %v", base, err)
		}
	}
	cfg := good
	cfg.BaseURL = "http://upvest-sim:8080"
	if _, err := New(cfg, WithInsecureHTTP()); err != nil {
		t.Errorf("WithInsecureHTTP: %v", err)
	}

	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		opts  []Option
		field string
	}{
		{"no base", func(c *Config) { c.BaseURL = "" }, nil, "BaseURL"},
		{"relative base", func(c *Config) { c.BaseURL = "sandbox.upvest.co" }, nil, "BaseURL"},
		{"plain http", func(c *Config) { c.BaseURL = "http://api.upvest.co" }, nil, "BaseURL"},
		{"ftp", func(c *Config) { c.BaseURL = "ftp://api.upvest.co" }, nil, "BaseURL"},
		{"query", func(c *Config) { c.BaseURL = "https://api.upvest.co?x=1" }, nil, "BaseURL"},
		{"user info", func(c *Config) { c.BaseURL = "https://user:" + testSecret + "@api.upvest.co" }, nil, "BaseURL"},
		{"no client id", func(c *Config) { c.ClientID = "" }, nil, "ClientID"},
		{"client id not a UUID", func(c *Config) { c.ClientID = "tenant-1" }, nil, "ClientID"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, nil, "ClientSecret"},
		{"secret with newline", func(c *Config) { c.ClientSecret = testSecret + "\n" }, nil, "ClientSecret"},
		{"no signer", func(c *Config) { c.Signer = nil }, nil, "Signer"},
		{"bad scope", func(c *Config) { c.Scopes = []string{"a b"} }, nil, "Scopes"},
		{"nil transport", nil, []Option{WithTransport(nil)}, "WithTransport"},
		{"bad retry", nil, []Option{WithRetry(RetryPolicy{MaxAttempts: -1})}, "WithRetry"},
		{"negative early expiry", nil, []Option{WithTokenEarlyExpiry(-time.Second)}, "WithTokenEarlyExpiry"},
		{"bad user agent", nil, []Option{WithUserAgent("a\nb")}, "WithUserAgent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			_, err := New(cfg, tc.opts...)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q echoes the secret", err)
			}
		})
	}
}

func TestSecretsStayOutOfFormatting(t *testing.T) {
	cfg := Config{BaseURL: "https://sandbox.upvest.co", ClientID: testClientID, ClientSecret: testSecret, Signer: testSigner(t)}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "client", c)
	for _, s := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg),
		fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String(),
	} {
		if strings.Contains(s, testSecret) {
			t.Errorf("secret in %q", s)
		}
	}
}

func TestDebugLog(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(sequence(`{"id":"x","cash_amount":"123.45"}`, 503))
	var buf logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := f.client(t, fastRetry, WithLogger(logger))
	if _, err := c.CreateTopup(testContext(t), CreateTopupRequest{AccountGroupID: agID, CashAmount: "123.45", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"op=CreateTopup", "method=POST", "path=/payments/topups", "status=503", "status=200",
		"upvest_request_id=" + requestID(1), "upvest_request_id=" + requestID(2), "attempt=1", "attempt=2", "duration=",
		"op=token", "path=/auth/token",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	key := f.apiRequests()[0].Header.Get("Idempotency-Key")
	sig := f.apiRequests()[0].Header.Get("Signature")
	for _, secret := range []string{tokenName(1), testSecret, "sig1=", sig, key, "123.45", agID} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

// A caller-supplied transport sees every attempt, already signed.
func TestWithTransport(t *testing.T) {
	f := newFakeUpstream(t)
	var mu sync.Mutex
	var seen []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" signed="+fmt.Sprint(r.Header.Get("Signature") != ""))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})
	c := f.client(t, WithTransport(rt), WithUserAgent("gateway-test/9"))
	if _, err := c.GetTopup(testContext(t), "x"); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /auth/token signed=true", "GET /payments/topups/x signed=true"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("transport saw %q, want %q", seen, want)
	}
	if ua := f.apiRequests()[0].Header.Get("User-Agent"); ua != "gateway-test/9" {
		t.Errorf("user-agent %q", ua)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
