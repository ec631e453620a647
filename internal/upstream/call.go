package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"
)

// maxSuccessBody caps a success answer; the largest is a 1000-item list page.
const maxSuccessBody = 10 << 20

// operation describes one upstream call.
type operation struct {
	name      string // the method name, for errors and logs
	method    string
	creates   bool // a POST that creates something: carries an idempotency-key
	noContent bool // the answer's body, if any, is ignored
}

// callState is what one call carries across its attempts.
type callState struct {
	op        *operation
	url       string
	body      []byte // marshalled once; every attempt sends these exact bytes
	idemKey   string
	refreshed bool // the one forced token refresh of this call is spent
	attempts  int  // HTTP requests sent
	status    int  // of the last answer
	requestID string
}

// do is the one request path behind every operation: marshal once, then
// attempts under the retry policy, each taking a token (refreshing it once on
// 401), signing afresh and sending; the success body is decoded into a T.
func do[T any](ctx context.Context, c *Client, op *operation, path string, query url.Values, in any, opts []CallOption) (*T, error) {
	out := new(T)
	if err := c.call(ctx, op, path, query, in, out, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// call runs op; out is nil for operations whose answer has no content.
func (c *Client) call(ctx context.Context, op *operation, path string, query url.Values, in, out any, opts []CallOption) error {
	s := callSettings{retry: c.retry}
	for _, o := range opts {
		if o != nil {
			o.applyCall(&s)
		}
	}
	cs := &callState{op: op}
	if s.info != nil {
		defer func() {
			*s.info = ResponseInfo{
				RequestID:      cs.requestID,
				IdempotencyKey: cs.idemKey,
				Attempts:       cs.attempts,
				StatusCode:     cs.status,
			}
		}()
	}
	if s.err != nil {
		return fmt.Errorf("upvest: %s: %w", op.name, s.err)
	}

	if op.creates {
		cs.idemKey = s.idemKey
		if cs.idemKey == "" {
			k, err := uuid.NewRandom()
			if err != nil {
				return fmt.Errorf("upvest: %s: making an idempotency key: %w", op.name, err)
			}
			cs.idemKey = k.String()
		}
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("upvest: %s: encoding the request: %w", op.name, err)
		}
		cs.body = b
	}
	cs.url = c.baseURL + path
	if len(query) > 0 {
		cs.url += "?" + query.Encode()
	}

	body, err := c.retryLoop(ctx, cs, s.retry)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if len(body) == 0 {
		return fmt.Errorf("upvest: %s: %w: status %d with an empty body%s", op.name, ErrMalformedAnswer, cs.status, requestIDSuffix(cs.requestID))
	}
	// Unknown fields are ignored (newer API versions add some); a field of the
	// wrong type is an error, never a silent zero.
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("upvest: %s: %w: status %d%s: %w", op.name, ErrMalformedAnswer, cs.status, requestIDSuffix(cs.requestID), err)
	}
	return nil
}

// ErrMalformedAnswer marks a 2xx answer whose body is empty, too large or
// does not decode. Upvest did act on the request: a creating call must not be
// reported as failed, and replaying it with the same idempotency-key (see
// ResponseInfo) returns the same answer rather than acting twice.
var ErrMalformedAnswer = errors.New("malformed success answer")

// retryLoop makes attempts until one succeeds, fails for good, or the policy
// or the caller's deadline ends it.
func (c *Client) retryLoop(ctx context.Context, cs *callState, p RetryPolicy) ([]byte, error) {
	name := cs.op.name
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, contextError(name, err, lastErr)
		}
		body, err := c.attempt(ctx, cs, attempt)
		if err == nil {
			return body, nil
		}
		lastErr = err
		if _, answered := AsError(err); !answered && ctx.Err() != nil {
			// No answer because the caller gave up: for a creating call the
			// outcome is unknown, and ResponseInfo has the key to replay it.
			return nil, contextError(name, ctx.Err(), err)
		}
		ok, retryAfter := retryable(err)
		if !ok {
			return nil, err
		}
		if attempt >= p.MaxAttempts {
			if p.MaxAttempts == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("upvest: %s: giving up after %d attempts: %w", name, attempt, err)
		}
		if retryAfter > maxRetryAfter {
			return nil, fmt.Errorf("upvest: %s: not retrying: Upvest asks to wait %v: %w", name, retryAfter, err)
		}
		wait := p.backoff(attempt, retryAfter, c.jitter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			// Sleeping would only end in the deadline; the last answer says
			// more than "deadline exceeded" would.
			return nil, fmt.Errorf("upvest: %s: not retrying: the deadline comes before the next attempt (in %v): %w",
				name, wait.Round(time.Millisecond), err)
		}
		if !sleep(ctx, wait) {
			return nil, contextError(name, ctx.Err(), err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// contextError reports that the caller's context ended the call: errors.Is
// finds ctxErr, and the last error is kept as text.
func contextError(op string, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("upvest: %s: %w", op, ctxErr)
	}
	return fmt.Errorf("upvest: %s: %w (last error: %v)", op, ctxErr, last)
}

// attempt is one attempt: a token, then the request; on 401 the token is
// refreshed (once per call) and the request sent once more.
func (c *Client) attempt(ctx context.Context, cs *callState, n int) ([]byte, error) {
	tok, err := c.tokens.get(ctx)
	if err != nil {
		return nil, err
	}
	body, err := c.send(ctx, cs, tok, n)
	if !isUnauthorized(err) {
		return body, err
	}
	if cs.refreshed {
		err.(*Error).Refreshed = true
		return nil, err
	}
	cs.refreshed = true
	if tok, err = c.tokens.refresh(ctx, tok); err != nil {
		return nil, err
	}
	body, err = c.send(ctx, cs, tok, n)
	if isUnauthorized(err) {
		err.(*Error).Refreshed = true
	}
	return body, err
}

func isUnauthorized(err error) bool {
	e, ok := err.(*Error)
	return ok && e.StatusCode == http.StatusUnauthorized
}

// send makes one HTTP request: headers, a fresh signature, the round trip,
// and the answer read within its cap. Non-2xx answers become *Error, no answer
// a *TransportError.
func (c *Client) send(ctx context.Context, cs *callState, tok *oauth2.Token, n int) ([]byte, error) {
	// No body here: Sign installs it (a reader over the exact bytes signed).
	req, err := http.NewRequestWithContext(ctx, cs.op.method, cs.url, nil)
	if err != nil {
		return nil, fmt.Errorf("upvest: %s: building the request: %w", cs.op.name, err)
	}
	req.ContentLength = int64(len(cs.body))
	h := req.Header
	c.setCommonHeaders(h)
	h.Set("Authorization", "Bearer "+tok.AccessToken)
	if cs.body != nil {
		h.Set("Content-Type", "application/json")
	}
	if cs.idemKey != "" {
		h.Set("Idempotency-Key", cs.idemKey)
	}
	if err := c.signer.Sign(req, cs.body); err != nil {
		return nil, fmt.Errorf("upvest: %s: signing the request: %w", cs.op.name, err)
	}
	// Without GetBody, net/http never replays the request by itself (it would
	// for a POST with an idempotency-key), which would repeat this signature's
	// nonce. The retry loop re-signs instead.
	req.GetBody = nil

	cs.attempts++
	start := time.Now()
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		err = &TransportError{Op: cs.op.name, Err: err}
		c.logAttempt(ctx, cs.op.name, req, 0, nil, n, time.Since(start), err)
		return nil, err
	}
	defer resp.Body.Close()
	cs.status = resp.StatusCode
	cs.requestID = cleanText(resp.Header.Get("Upvest-Request-Id"), maxRequestID)

	var body []byte
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		limit := int64(maxSuccessBody)
		if cs.op.noContent {
			limit = maxErrorBody // read only to keep the connection reusable
		}
		body, err = readCapped(resp.Body, limit, resp.ContentLength)
		switch {
		case cs.op.noContent:
			// The 2xx status is the whole answer; a broken or oversize body
			// does not undo it, and retrying a done DELETE would only fail.
			body, err = nil, nil
		case errors.Is(err, errTooLarge):
			err = fmt.Errorf("upvest: %s: %w: status %d, body over %d bytes%s", cs.op.name, ErrMalformedAnswer, resp.StatusCode, limit, requestIDSuffix(cs.requestID))
		case err != nil:
			// The answer broke off: as good as none, and as safe to retry.
			err = &TransportError{Op: cs.op.name, Err: err}
		}
	} else {
		b, _ := readCapped(resp.Body, maxErrorBody, resp.ContentLength) // a partial body still tells something
		e := ParseProblem(resp.StatusCode, resp.Header, b)
		redactError(e, tok.AccessToken)
		err = e
	}
	c.logAttempt(ctx, cs.op.name, req, resp.StatusCode, resp.Header, n, time.Since(start), err)
	if err != nil {
		return nil, err
	}
	return body, nil
}

var errTooLarge = errors.New("body too large")

// readCapped reads at most limit bytes, sized by the Content-Length hint
// when there is one; errTooLarge (with the first limit bytes) when there are
// more.
func readCapped(r io.Reader, limit, hint int64) ([]byte, error) {
	size := int64(512)
	if hint >= 0 {
		size = min(hint, limit) + 1 // +1: room to read EOF without growing
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(int64(cap(b)), limit+1)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b[:limit], errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func requestIDSuffix(id string) string {
	if id == "" {
		return ""
	}
	return " [upvest-request-id " + id + "]"
}
