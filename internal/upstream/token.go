package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/upvest-gateway/gateway/internal/metrics"
)

// ErrTokenRequest marks a failure of the OAuth2 token request rather than of
// the API call itself; an *Error or *TransportError inside says why. A 400 or
// 401 from the token endpoint means the client's credentials are refused.
var ErrTokenRequest = errors.New("upvest: token request failed")

const (
	// tokenFetchTimeout bounds a token request. The request runs detached
	// from the caller that started it, because other calls wait on it too.
	tokenFetchTimeout = 30 * time.Second
	// tokenExpirySkew: a token closer than this to its expiry is no longer
	// sent, so it cannot expire between here and Upvest.
	tokenExpirySkew = 10 * time.Second
	// tokenQuietPeriod spaces early refreshes after one failed.
	tokenQuietPeriod = time.Second
)

// tokenCache holds the tenant's access token. Calls share it; at most one
// token request is in flight, and everyone who needs a token meanwhile waits
// on that one. Between refreshAt and hardAt the old token is still handed out
// while a refresh runs in the background, so no call waits on a routine
// refresh.
type tokenCache struct {
	cfg     clientcredentials.Config
	http    *http.Client // signs the token request; handed to x/oauth2 by context
	early   time.Duration
	secret  string // only to redact it from error text
	logger  *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time // zero: no expiry known; only a 401 replaces the token
	hardAt    time.Time
	flight    *tokenFlight
	// quietUntil: after a failed early refresh, the next one waits a
	// moment, so an outage of the token endpoint is not hit by every call
	// while the current token is still good.
	quietUntil time.Time
}

// tokenFlight is one token request and everyone waiting on it.
type tokenFlight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

func newTokenCache(c *Client, secret string, scopes []string, early time.Duration) *tokenCache {
	return &tokenCache{
		cfg: clientcredentials.Config{
			ClientID:     c.clientID,
			ClientSecret: secret,
			TokenURL:     c.baseURL + "/auth/token",
			Scopes:       scopes,
			AuthStyle:    oauth2.AuthStyleInParams,
		},
		http: &http.Client{
			Transport:     tokenTransport{c: c},
			CheckRedirect: noRedirects,
		},
		early:   early,
		secret:  secret,
		logger:  c.logger,
		metrics: c.metrics,
		now:     time.Now,
	}
}

// get returns a token to send now, fetching one if none is usable.
func (tc *tokenCache) get(ctx context.Context) (*oauth2.Token, error) {
	now := tc.now()
	tc.mu.Lock()
	if tok := tc.tok; tok != nil {
		if tc.refreshAt.IsZero() || now.Before(tc.refreshAt) {
			tc.mu.Unlock()
			return tok, nil
		}
		if now.Before(tc.hardAt) {
			if !now.Before(tc.quietUntil) {
				tc.startLocked(ctx, refreshExpiry) // refresh early, keep using the still valid one
			}
			tc.mu.Unlock()
			return tok, nil
		}
		f := tc.startLocked(ctx, refreshExpiry)
		tc.mu.Unlock()
		return tc.wait(ctx, f)
	}
	f := tc.startLocked(ctx, "")
	tc.mu.Unlock()
	return tc.wait(ctx, f)
}

// refresh replaces a token Upvest refused with 401 and returns its
// successor. Only the first caller holding the refused token triggers a
// request: if the cached token is already another one, that one is returned,
// so N concurrent 401s cost one token request.
func (tc *tokenCache) refresh(ctx context.Context, refused *oauth2.Token) (*oauth2.Token, error) {
	tc.mu.Lock()
	if tc.tok == refused {
		tc.tok = nil
	}
	if tc.tok != nil {
		tc.mu.Unlock()
		return tc.get(ctx)
	}
	f := tc.startLocked(ctx, refreshUnauthorized) // joins the running request, if any
	tc.mu.Unlock()
	return tc.wait(ctx, f)
}

// Why a token is replaced, as the metrics name it.
const (
	refreshExpiry       = "expiry"
	refreshUnauthorized = "unauthorized"
)

// startLocked returns the running token request, starting one if needed;
// reason says why a new one replaces a token ("" for the first).
func (tc *tokenCache) startLocked(ctx context.Context, reason string) *tokenFlight {
	if tc.flight != nil {
		return tc.flight
	}
	if reason != "" {
		tc.metrics.TokenRefresh(reason)
	}
	f := &tokenFlight{done: make(chan struct{})}
	tc.flight = f
	go tc.run(context.WithoutCancel(ctx), f)
	return f
}

func (tc *tokenCache) wait(ctx context.Context, f *tokenFlight) (*oauth2.Token, error) {
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("upvest: waiting for a token: %w", ctx.Err())
	}
}

func (tc *tokenCache) run(ctx context.Context, f *tokenFlight) {
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, tc.http)

	start := tc.now()
	tok, err := tc.cfg.Token(ctx)
	if err != nil {
		tok, err = nil, tc.tokenError(err)
	} else if !validToken(tok.AccessToken) {
		tok, err = nil, fmt.Errorf("%w: the access token in the answer is not a valid header value", ErrTokenRequest)
	}

	tc.mu.Lock()
	if err == nil {
		tc.tok = tok
		tc.refreshAt, tc.hardAt = tc.schedule(start, tok)
	} else {
		tc.quietUntil = tc.now().Add(tokenQuietPeriod)
	}
	tc.flight = nil
	f.tok, f.err = tok, err
	tc.mu.Unlock()
	close(f.done)
	tc.metrics.TokenRequest(tokenResult(err))
	if err != nil {
		// Callers see this error only if they waited for this request.
		tc.logger.LogAttrs(ctx, slog.LevelWarn, "upvest token request failed", slog.String("error", err.Error()))
	}
}

// tokenResult names a token request's outcome for the metrics: ok; refused
// when Upvest answered it with a 4xx (the credentials, most likely); error
// for anything else (no answer, a 5xx, an answer that could not be used).
func tokenResult(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := AsError(err); ok && e.StatusCode >= 400 && e.StatusCode < 500 {
		return "refused"
	}
	return "error"
}

// schedule says when tok becomes due for a refresh (early, but never before
// half its lifetime) and when it must no longer be sent. The lifetime is what
// was left of it when the answer arrived, counted from before the request, so
// it errs on the short side. x/oauth2 reports expiry on the wall clock; the
// cache's own clock may differ (tests), hence the conversion.
func (tc *tokenCache) schedule(start time.Time, tok *oauth2.Token) (refreshAt, hardAt time.Time) {
	if tok.Expiry.IsZero() {
		return time.Time{}, time.Time{}
	}
	life := time.Until(tok.Expiry)
	if life <= 0 {
		return start, start
	}
	expiry := start.Add(life)
	margin := min(tc.early, life/2)
	return expiry.Add(-margin), expiry.Add(-min(tokenExpirySkew, margin))
}

// tokenError turns what x/oauth2 returns into ErrTokenRequest wrapping an
// *Error (an answer) or a *TransportError (none), without the client secret.
func (tc *tokenCache) tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		if status >= 200 && status <= 299 {
			// An OAuth2 error inside a success answer: a protocol violation.
			return fmt.Errorf("%w: the token endpoint answered %d with error %q", ErrTokenRequest,
				status, redact(cleanText(re.ErrorCode, maxURIish), tc.secret))
		}
		e := ParseProblem(status, re.Response.Header, re.Body)
		if e.Type == "" {
			e.Type = cleanText(re.ErrorCode, maxURIish) // RFC 6749 "error"
		}
		if e.Detail == "" {
			e.Detail = cleanText(re.ErrorDescription, maxDetail)
		}
		redactError(e, tc.secret)
		return fmt.Errorf("%w: %w", ErrTokenRequest, e)
	}
	var te *TransportError
	if errors.As(err, &te) {
		return fmt.Errorf("%w: %w", ErrTokenRequest, te)
	}
	// A success answer that could not be used: its body broke off, is not
	// JSON, or holds no token. As good as no answer, and as worth asking
	// again. The text holds no form values, but is redacted anyway so no
	// future wording can leak the secret.
	return &malformedError{fmt.Errorf("%w: %w: %s", ErrTokenRequest, ErrMalformedAnswer, redact(err.Error(), tc.secret))}
}

// validToken: an access token must be a token68 (RFC 6750) to travel in
// the authorization header.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return true
}

// redact replaces every occurrence of secret in s.
func redact(s, secret string) string {
	if secret == "" || !strings.Contains(s, secret) {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}

// redactError removes secret from every text field of e: an upstream that
// echoes a credential back must not put it into our logs.
func redactError(e *Error, secret string) {
	e.Type = redact(e.Type, secret)
	e.Title = redact(e.Title, secret)
	e.Detail = redact(e.Detail, secret)
	e.Instance = redact(e.Instance, secret)
	e.RequestID = redact(e.RequestID, secret)
}
