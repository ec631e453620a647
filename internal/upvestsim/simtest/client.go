// Package simtest is a minimal, signing HTTP client for tests that talk to
// the simulator (or the real API) directly, below the gateway's own client:
// it builds exactly the request a test describes, signs it with version 15
// and lets a test break any part of it.
package simtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// Client sends signed requests on behalf of one tenant.
type Client struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
	Signer       *httpsig.Signer
	HTTP         *http.Client // default http.DefaultClient
}

// Response is an answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Problem is the application/problem+json body of an error answer.
type Problem struct {
	Type      string `json:"type"`
	Status    int    `json:"status"`
	Title     string `json:"title"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

// Problem decodes an error answer; it returns the zero Problem when the body
// is not one.
func (r *Response) Problem() Problem {
	var p Problem
	_ = json.Unmarshal(r.Body, &p)
	return p
}

// Option changes one request before (or, with Tamper, after) it is signed.
type Option func(*request)

type request struct {
	header http.Header
	unsign bool
	tamper []func(*http.Request)
	signer *httpsig.Signer
}

// Token sets the bearer token.
func Token(tok string) Option {
	return func(r *request) { r.header.Set("Authorization", "Bearer "+tok) }
}

// IdempotencyKey sets the idempotency-key header.
func IdempotencyKey(key string) Option {
	return func(r *request) { r.header.Set("Idempotency-Key", key) }
}

// Header sets (value != "") or removes (value == "") a header before signing.
func Header(name, value string) Option {
	return func(r *request) {
		if value == "" {
			r.header.Del(name)
			return
		}
		r.header.Set(name, value)
	}
}

// Unsigned sends the request without a signature.
func Unsigned() Option { return func(r *request) { r.unsign = true } }

// SignWith signs with another signer (e.g. an unknown key).
func SignWith(s *httpsig.Signer) Option { return func(r *request) { r.signer = s } }

// Tamper changes the request after it was signed.
func Tamper(f func(*http.Request)) Option {
	return func(r *request) { r.tamper = append(r.tamper, f) }
}

// Send builds, signs and sends one request. A non-empty body is sent as
// application/json unless an option sets another content-type.
func (c *Client) Send(ctx context.Context, method, path string, body []byte, opts ...Option) (*Response, error) {
	spec := &request{header: http.Header{}, signer: c.Signer}
	spec.header.Set("Accept", "application/json")
	spec.header.Set("Upvest-Api-Version", "1")
	spec.header.Set("Upvest-Client-Id", c.ClientID)
	if len(body) > 0 {
		spec.header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(spec)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = spec.header
	if !spec.unsign {
		if err := spec.signer.Sign(req, body); err != nil {
			return nil, fmt.Errorf("simtest: sign: %w", err)
		}
	}
	for _, f := range spec.tamper {
		f(req)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Do is Send for tests: a transport error fails t.
func (c *Client) Do(t testing.TB, method, path string, body []byte, opts ...Option) *Response {
	t.Helper()
	resp, err := c.Send(context.Background(), method, path, body, opts...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// TokenForm is the form body of a client credentials token request.
func (c *Client) TokenForm(scopes ...string) []byte {
	return []byte(url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret},
		"scope":         {strings.Join(scopes, " ")},
	}.Encode())
}

// FetchToken requests a token for scopes and returns the whole answer.
func (c *Client) FetchToken(ctx context.Context, scopes ...string) (*Response, error) {
	return c.Send(ctx, http.MethodPost, "/auth/token", c.TokenForm(scopes...),
		Header("Content-Type", "application/x-www-form-urlencoded"))
}

// MustToken returns an access token for scopes or fails t.
func (c *Client) MustToken(t testing.TB, scopes ...string) string {
	t.Helper()
	resp, err := c.FetchToken(context.Background(), scopes...)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.Status != http.StatusOK || resp.JSON(&tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %s", resp.Status, resp.Body)
	}
	return tok.AccessToken
}

// Key algorithms GenerateKey accepts.
const (
	P256    = "P-256"
	P384    = "P-384"
	P521    = "P-521"
	Ed25519 = "Ed25519"
)

// GenerateKey makes a fresh signing key, so no private key is ever committed.
func GenerateKey(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	switch alg {
	case P256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case P521:
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key algorithm %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// NewSigner is httpsig.NewSigner for tests.
func NewSigner(t testing.TB, key crypto.Signer, keyID string, opts ...httpsig.SignerOption) *httpsig.Signer {
	t.Helper()
	s, err := httpsig.NewSigner(key, keyID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
