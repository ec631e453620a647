// Package upstream is the typed client of the Upvest Investment API: OAuth2
// client-credentials tokens, v15 request signatures, idempotency keys, safe
// retries, and problem+json answers turned into *Error. It knows nothing of
// gRPC; the service layer maps its errors.
package upstream

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/tracing"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// DefaultScopes are the OAuth2 scopes the gateway needs for every operation it
// fronts, and for fetching the webhook verification keys.
var DefaultScopes = []string{
	"virtual_cash_balances:admin",
	"topups:admin",
	"payments:admin",
	"positions:read",
	"webhooks:read",
}

// tracerName names the instrumentation of the client's own spans.
const tracerName = "github.com/upvest-gateway/gateway/internal/upstream"

// Webhook subscription scopes. Neither is among DefaultScopes: only
// managing subscriptions needs them, and a client made for that alone
// (Config.Scopes) keeps the token every API call carries from holding the
// right to move the tenant's webhooks elsewhere.
const (
	ScopeWebhooksRead  = "webhooks:read"
	ScopeWebhooksAdmin = "webhooks:admin"
)

// Config is what identifies the gateway to Upvest. All fields but Scopes are required.
type Config struct {
	BaseURL      string          // e.g. https://sandbox.upvest.co (no trailing slash needed)
	ClientID     string          // tenant client id (UUID): upvest-client-id header and OAuth2 client_id
	ClientSecret string          // OAuth2 client secret; never logged, never in an error
	Signer       *httpsig.Signer // signs every request, the token request included
	Scopes       []string        // default: DefaultScopes
}

// String keeps the secret out of %v, %+v and %s.
func (c Config) String() string {
	return fmt.Sprintf("upstream.Config{BaseURL:%q ClientID:%q ClientSecret:%s Scopes:%q}",
		c.BaseURL, c.ClientID, redactedMarker(c.ClientSecret), c.Scopes)
}

// GoString keeps the secret out of %#v.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the secret out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redactedMarker(c.ClientSecret)),
		slog.Any("scopes", c.Scopes),
	)
}

func redactedMarker(secret string) string {
	if secret == "" {
		return "<empty>"
	}
	return "<redacted>"
}

// Client calls the Upvest Investment API. It is safe for concurrent use; make
// one per tenant and share it, so calls share one token and one connection pool.
type Client struct {
	baseURL   string // without trailing slash
	clientID  string
	signer    *httpsig.Signer
	transport http.RoundTripper
	retry     RetryPolicy
	logger    *slog.Logger
	userAgent string
	tokens    *tokenCache
	metrics   *metrics.Metrics
	tracer    trace.Tracer // nil without WithTracing
	// jitter returns a uniform value in [0, n]; replaced in tests to make
	// backoffs deterministic.
	jitter func(n int64) int64
}

// New validates cfg and the options and returns a ready client. It does no I/O:
// the first token is fetched by the first call. Errors name the bad field and
// never echo the secret.
func New(cfg Config, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.applyOption(&o)
		}
	}
	if o.err != nil {
		return nil, o.err
	}

	base, err := validateBaseURL(cfg.BaseURL, o.insecureHTTP)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, errors.New("upstream: Config.ClientID is required")
	}
	if _, err := uuid.Parse(cfg.ClientID); err != nil || len(cfg.ClientID) != 36 {
		return nil, fmt.Errorf("upstream: Config.ClientID %q is not a UUID", cfg.ClientID)
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("upstream: Config.ClientSecret is required")
	}
	if !validHeaderValue(cfg.ClientSecret) {
		// Deliberately no detail: any part of it would be part of the secret.
		return nil, errors.New("upstream: Config.ClientSecret contains control characters or surrounding spaces")
	}
	if cfg.Signer == nil {
		return nil, errors.New("upstream: Config.Signer is required")
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	scopes = slices.Clone(scopes)
	for i, s := range scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '"' || r == '\\' }) {
			return nil, fmt.Errorf("upstream: Config.Scopes[%d] %q is not a valid OAuth2 scope", i, s)
		}
	}

	c := &Client{
		baseURL:   base,
		clientID:  cfg.ClientID,
		signer:    cfg.Signer,
		transport: o.tracedTransport(o.transport),
		retry:     o.retry,
		metrics:   o.metrics,
		logger:    o.logger,
		userAgent: o.userAgent,
		jitter:    randInt64N,
	}
	if o.tracer != nil && tracing.Records(o.tracer) {
		c.tracer = o.tracer.Tracer(tracerName)
	}
	c.tokens = newTokenCache(c, cfg.ClientSecret, scopes, o.earlyExpiry)
	return c, nil
}

// String identifies the client without its credentials.
func (c *Client) String() string {
	return fmt.Sprintf("upstream.Client{BaseURL:%q ClientID:%q}", c.baseURL, c.clientID)
}

// GoString keeps the credentials out of %#v.
func (c *Client) GoString() string { return c.String() }

// validateBaseURL accepts an absolute https URL (http only for loopback hosts,
// or with WithInsecureHTTP), without credentials, query or fragment, and
// returns it without a trailing slash.
func validateBaseURL(raw string, insecureHTTP bool) (string, error) {
	if raw == "" {
		return "", errors.New("upstream: Config.BaseURL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("upstream: Config.BaseURL is not a valid URL")
	}
	if u.User != nil {
		// Never echo it: the user info may hold a password.
		return "", errors.New("upstream: Config.BaseURL must not contain user info")
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("upstream: Config.BaseURL %q is not an absolute URL", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("upstream: Config.BaseURL %q must not have a query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecureHTTP && !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("upstream: Config.BaseURL %q: plain http would expose the client secret and tokens; use https (or WithInsecureHTTP on a trusted network)", raw)
		}
	default:
		return "", fmt.Errorf("upstream: Config.BaseURL %q: scheme must be https", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHeaderValue reports whether s can travel as an HTTP header value (or
// form value) unchanged: visible ASCII or UTF-8, inner spaces allowed.
func validHeaderValue(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

// setCommonHeaders sets the headers every Upvest call carries, the token
// request included.
func (c *Client) setCommonHeaders(h http.Header) {
	h.Set("Accept", "application/json")
	h.Set("Upvest-Client-Id", c.clientID)
	h.Set("Upvest-Api-Version", "1")
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
}
