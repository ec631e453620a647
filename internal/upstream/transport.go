package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// TransportError is a call that got no HTTP answer: the connection failed,
// dropped, or broke while the answer was read. The request may or may not have
// reached Upvest; retrying it with the same idempotency-key is safe. The
// service layer maps it to UNAVAILABLE.
type TransportError struct {
	Op  string // the operation, e.g. "CreateTopup", or "token"
	Err error
}

func (e *TransportError) Error() string {
	return "upvest: " + e.Op + ": transport: " + e.Err.Error()
}

func (e *TransportError) Unwrap() error { return e.Err }

// maxTokenBody caps the token endpoint's answer (a token is a few hundred bytes).
const maxTokenBody = 1 << 20

// tokenTransport is the signing layer under the OAuth2 token request: it adds
// the Upvest headers, signs (v15, no authorization component) and buffers the
// answer. Buffering turns a connection that breaks mid-body into a
// *TransportError here, instead of an untyped error inside x/oauth2.
type tokenTransport struct{ c *Client }

func (t tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxTokenBody))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("upvest: token: reading the request body: %w", err)
		}
		body = b
	} else if req.Body != nil {
		req.Body.Close()
	}

	r := req.Clone(req.Context()) // a RoundTripper must not modify its request
	t.c.setCommonHeaders(r.Header)
	r.Header.Del("Authorization")
	if err := t.c.signer.Sign(r, body); err != nil { // sets Body and ContentLength from body
		return nil, fmt.Errorf("upvest: token: signing the request: %w", err)
	}
	r.GetBody = nil // no replay of a used nonce by net/http

	start := time.Now()
	resp, err := t.c.transport.RoundTrip(r)
	if err != nil {
		t.c.recordAttempt(req.Context(), "token", r, 0, nil, 1, time.Since(start), err)
		return nil, &TransportError{Op: "token", Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	t.c.recordAttempt(req.Context(), "token", r, resp.StatusCode, resp.Header, 1, time.Since(start), err)
	if err != nil {
		return nil, &TransportError{Op: "token", Err: err}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// noRedirects keeps the token request (and its client secret) from being
// replayed to wherever a 3xx points; the 3xx becomes an error instead.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// recordAttempt counts an attempt in the metrics and writes its debug
// record: never headers (tokens, signatures) and never bodies (money,
// personal data).
func (c *Client) recordAttempt(ctx context.Context, op string, req *http.Request, status int, h http.Header, attempt int, d time.Duration, err error) {
	c.metrics.UpstreamAttempt(op, status, attempt, d)
	if !c.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("op", op),
		slog.String("method", req.Method),
		slog.String("path", req.URL.EscapedPath()),
		slog.Int("status", status),
	)
	if h != nil {
		attrs = append(attrs, slog.String("upvest_request_id", cleanText(h.Get("Upvest-Request-Id"), maxRequestID)))
	}
	attrs = append(attrs, slog.Int("attempt", attempt), slog.Duration("duration", d))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, "upvest call", attrs...)
}
