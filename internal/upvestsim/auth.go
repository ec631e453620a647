package upvestsim

import (
	"crypto/subtle"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// knownScopes are the OAuth2 scopes of the Investment API reference; a token
// request naming any other is refused.
var knownScopes = map[string]bool{
	"account_liquidations:admin": true, "account_liquidations:read": true, "account_returns:read": true,
	"accounts:admin": true, "accounts:read": true, "checks:admin": true, "checks:read": true,
	"credit_fundings:read": true, "fees:admin": true, "fees:read": true, "files:read": true,
	"instruments:read": true, "mandates:admin": true, "mandates:read": true,
	"orders:admin": true, "orders:read": true, "payments:admin": true, "payments:read": true,
	"portfolios:admin": true, "portfolios:read": true, "positions:read": true, "prices:read": true,
	"reference_accounts:admin": true, "reference_accounts:read": true, "reports:admin": true, "reports:read": true,
	"savings_plans:admin": true, "savings_plans:read": true,
	"securities_transfers:admin": true, "securities_transfers:read": true,
	"taxes:admin": true, "taxes:read": true, "tests:admin": true, "topups:admin": true, "topups:read": true,
	"transactions:read": true, "users:admin": true, "users:read": true, "valuations:read": true,
	"virtual_cash_balances:admin": true, "webhooks:admin": true, "webhooks:read": true,
}

// maxScopeLen is the upstream limit on the scope form field.
const maxScopeLen = 1000

// accessToken is an issued bearer token. Tokens are opaque random strings,
// so a client cannot learn anything from them, as upstream.
type accessToken struct {
	scopes  map[string]bool
	expires time.Time
}

type tokenJSON struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
}

// tokenFormFields are the only fields POST /auth/token accepts.
var tokenFormFields = []string{"client_id", "client_secret", "grant_type", "scope"}

// issueToken is POST /auth/token: the OAuth2 client credentials grant.
func (s *Sim) issueToken(c *call) (*reply, error) {
	form, p := parseTokenForm(c.r.Header.Get("Content-Type"), c.body)
	if p != nil {
		return nil, p
	}
	if form["grant_type"] != "client_credentials" {
		return nil, newProblem(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
	}
	idOK := subtle.ConstantTimeCompare([]byte(form["client_id"]), []byte(s.cfg.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(form["client_secret"]), []byte(s.cfg.ClientSecret)) == 1
	if !idOK || !secretOK {
		return nil, unauthorized("invalid client credentials")
	}
	scopes := strings.Fields(form["scope"])
	set := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		if !knownScopes[sc] {
			return nil, newProblem(http.StatusBadRequest, "invalid_scope", "unknown scope %q", sc)
		}
		set[sc] = true
	}

	tok := newAccessToken()
	now := s.cfg.Now()
	s.mu.Lock()
	for k, t := range s.tokens { // expired tokens are never valid again
		if !now.Before(t.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tok] = &accessToken{scopes: set, expires: now.Add(s.cfg.TokenTTL)}
	s.mu.Unlock()

	return jsonReply(http.StatusOK, tokenJSON{
		AccessToken: tok,
		ExpiresIn:   int(s.cfg.TokenTTL / time.Second),
		TokenType:   "bearer",
		Scope:       strings.Join(scopes, " "),
	}), nil
}

// parseTokenForm decodes the form body of a token request: exactly the four
// upstream fields, each once.
func parseTokenForm(contentType string, body []byte) (map[string]string, *problem) {
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest("content-type must be application/x-www-form-urlencoded")
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("malformed form body")
	}
	form := make(map[string]string, len(values))
	for k, v := range values {
		if !slices.Contains(tokenFormFields, k) {
			return nil, badRequest("unknown field %q", k)
		}
		if len(v) != 1 {
			return nil, badRequest("field %s given %d times", k, len(v))
		}
		form[k] = v[0]
	}
	for _, k := range tokenFormFields {
		if form[k] == "" {
			return nil, badRequest("missing required field %s", k)
		}
	}
	if len(form["scope"]) > maxScopeLen {
		return nil, badRequest("scope is longer than %d characters", maxScopeLen)
	}
	return form, nil
}

// authorize checks the bearer token of a non-public route: known, unexpired
// (401) and holding one of the route's scopes (403).
func (s *Sim) authorize(c *call) *problem {
	h := c.r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return unauthorized("missing bearer token")
	}
	s.mu.Lock()
	t := s.tokens[tok]
	s.mu.Unlock()
	switch {
	case t == nil:
		return unauthorized("unknown access token")
	case !s.cfg.Now().Before(t.expires):
		return unauthorized("access token expired")
	}
	for _, sc := range c.route.scopes {
		if t.scopes[sc] {
			return nil
		}
	}
	return forbidden("the access token lacks scope %s", strings.Join(c.route.scopes, " or "))
}

// verifyKeys is GET /auth/verify_keys: the JWKS of the webhook signing key.
func (s *Sim) verifyKeys(*call) (*reply, error) {
	return &reply{status: http.StatusOK, contentType: "application/json", body: s.jwks}, nil
}
