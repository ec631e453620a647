package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"

	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/pause"
)

// Span attributes of the gateway's calls, on the client's spans (and the
// server's, see internal/server).
const (
	AttrOperation      = "upvest.operation"
	AttrRequestID      = "upvest.request_id" // the upvest-request-id of Upvest's last answer
	AttrIdempotencyKey = "upvest.idempotency_key"
	AttrAttempts       = "upvest.attempts"
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

// mutates reports whether the operation changes something upstream, so that
// an attempt without a known answer leaves the outcome unknown.
func (op *operation) mutates() bool { return op.method != http.MethodGet }

// callState is what one call carries across its attempts.
type callState struct {
	op        *operation
	url       string
	body      []byte // marshalled once; every attempt sends these exact bytes
	decode    func([]byte) error
	idemKey   string
	refreshed bool // the one forced token refresh of this call is spent
	attempts  int  // HTTP requests sent
	status    int  // of the last answer
	requestID string
	metrics   *metrics.Metrics
	// unknown is set while the last attempt of a mutating call may have
	// taken effect without the gateway learning how it ended (the request
	// was written but no answer came, a 500/502/504, a 409 for a key still
	// in flight upstream, a 2xx whose body could not be read); a definitive
	// answer clears it.
	unknown bool
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

// ErrOutcomeUnknown marks a call that changes something upstream and ended
// (its deadline, or its retries) while the outcome of an attempt was
// unknown: Upvest may or may not have acted. Retrying with the same
// idempotency-key (OutcomeUnknownError.IdempotencyKey) settles it without
// acting twice.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// OutcomeUnknownError is ErrOutcomeUnknown with what the caller needs to
// settle it.
type OutcomeUnknownError struct {
	Op             string
	IdempotencyKey string // "" for a cancel, which is retried by its id
	Attempts       int
	Err            error // the last attempt's error, or the context's
}

func (e *OutcomeUnknownError) Error() string {
	key := ""
	if e.IdempotencyKey != "" {
		key = "; retry with idempotency-key " + e.IdempotencyKey
	}
	return fmt.Sprintf("upvest: %s: outcome unknown after %d attempts%s: %v", e.Op, e.Attempts, key, e.Err)
}

func (e *OutcomeUnknownError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.Err} }

// outcomeUnknown ends a call whose outcome is unknown with err.
func (cs *callState) outcomeUnknown(err error) error {
	cs.metrics.UpstreamOutcomeUnknown(cs.op.name)
	return &OutcomeUnknownError{Op: cs.op.name, IdempotencyKey: cs.idemKey, Attempts: cs.attempts, Err: err}
}

// call runs op; out is nil for operations whose answer has no content.
func (c *Client) call(ctx context.Context, op *operation, path string, query url.Values, in, out any, opts []CallOption) (err error) {
	s := callSettings{retry: c.retry}
	for _, o := range opts {
		if o != nil {
			o.applyCall(&s)
		}
	}
	cs := &callState{op: op, metrics: c.metrics}
	if out != nil {
		cs.decode = func(b []byte) error {
			if len(b) == 0 {
				return errors.New("empty body")
			}
			// Unknown fields are ignored (newer API versions add some); a
			// field of the wrong type is an error, never a silent zero.
			return json.Unmarshal(b, out)
		}
	}
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
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.tracer.Start(ctx, "upvest "+op.name, trace.WithAttributes(attribute.String(AttrOperation, op.name)))
		if cs.idemKey != "" {
			span.SetAttributes(attribute.String(AttrIdempotencyKey, cs.idemKey))
		}
		defer func() { cs.endSpan(span, err) }()
	}
	return c.retryLoop(ctx, cs, s.retry)
}

// endSpan ends the call's span with what its attempts learnt. The error's
// text stays out of the span: it may quote Upvest's problem detail.
func (cs *callState) endSpan(span trace.Span, err error) {
	span.SetAttributes(attribute.Int(AttrAttempts, cs.attempts))
	if cs.requestID != "" {
		span.SetAttributes(attribute.String(AttrRequestID, cs.requestID))
	}
	if cs.status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", cs.status))
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrOutcomeUnknown):
		span.SetStatus(otelcodes.Error, "outcome unknown")
	case cs.status != 0:
		span.SetStatus(otelcodes.Error, "answered "+strconv.Itoa(cs.status))
	default:
		span.SetStatus(otelcodes.Error, "no answer")
	}
	span.End()
}

// ErrMalformedAnswer marks a 2xx answer whose body is empty, too large or
// does not decode. Upvest did act on a creating request, so its answer is
// asked for again with the same idempotency-key, which returns the first
// answer rather than acting twice; a call that never gets a readable one
// ends with ErrOutcomeUnknown.
var ErrMalformedAnswer = errors.New("malformed success answer")

// retryLoop makes attempts until one succeeds, fails for good, or the policy
// or the caller's deadline ends it. While the outcome of a mutating call is
// unknown it keeps trying past MaxAttempts, until the outcome is known or
// the deadline comes: giving up early would leave the caller guessing.
func (c *Client) retryLoop(ctx context.Context, cs *callState, p RetryPolicy) error {
	name := cs.op.name
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return cs.ended(contextError(name, err, lastErr))
		}
		err := c.attempt(ctx, cs, attempt)
		if err == nil {
			return nil
		}
		lastErr = err
		if _, answered := AsError(err); !answered && ctx.Err() != nil {
			// No answer because the caller gave up: for a mutating call that
			// was sent, the outcome is unknown.
			return cs.ended(contextError(name, ctx.Err(), err))
		}
		ok, retryAfter := retryable(err)
		if !ok {
			return err
		}
		_, hasDeadline := ctx.Deadline()
		if attempt >= p.MaxAttempts && !(cs.unknown && hasDeadline) {
			if p.MaxAttempts == 1 {
				return cs.ended(err)
			}
			return cs.ended(fmt.Errorf("upvest: %s: giving up after %d attempts: %w", name, attempt, err))
		}
		if retryAfter > maxRetryAfter {
			return cs.ended(fmt.Errorf("upvest: %s: not retrying: Upvest asks to wait %v: %w", name, retryAfter, err))
		}
		c.metrics.UpstreamRetry(name, cs.retryReason(err))
		wait := p.backoff(attempt, retryAfter, c.jitter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			// Sleeping would only end in the deadline; the last answer says
			// more than "deadline exceeded" would.
			return cs.ended(fmt.Errorf("upvest: %s: not retrying: the deadline comes before the next attempt (in %v): %w",
				name, wait.Round(time.Millisecond), err))
		}
		if !pause.For(ctx, wait) {
			return cs.ended(contextError(name, ctx.Err(), err))
		}
	}
}

// retryReason is why a failed attempt is repeated, as the metrics name it:
// its answer's status class, or no usable answer at all.
func (cs *callState) retryReason(err error) string {
	if e, ok := AsError(err); ok {
		switch {
		case e.StatusCode == http.StatusConflict:
			return "409"
		case e.StatusCode == http.StatusTooManyRequests:
			return "429"
		case e.StatusCode >= 500:
			return "5xx"
		}
	}
	if _, ok := errors.AsType[*malformedError](err); ok && cs.unknown {
		// Upvest acted, but its answer could not be used.
		return "unknown_outcome"
	}
	return "transport"
}

// ended is err as the call's final error: an OutcomeUnknownError while the
// outcome of a mutating call is unknown.
func (cs *callState) ended(err error) error {
	if cs.unknown {
		return cs.outcomeUnknown(err)
	}
	return err
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
func (c *Client) attempt(ctx context.Context, cs *callState, n int) error {
	tok, err := c.tokens.get(ctx)
	if err != nil {
		return err
	}
	err = c.send(ctx, cs, tok, n)
	if !isUnauthorized(err) {
		return err
	}
	if cs.refreshed {
		err.(*Error).Refreshed = true
		return err
	}
	cs.refreshed = true
	if tok, err = c.tokens.refresh(ctx, tok); err != nil {
		return err
	}
	err = c.send(ctx, cs, tok, n)
	if isUnauthorized(err) {
		err.(*Error).Refreshed = true
	}
	return err
}

func isUnauthorized(err error) bool {
	e, ok := err.(*Error)
	return ok && e.StatusCode == http.StatusUnauthorized
}

// send makes one HTTP request: headers, a fresh signature, the round trip,
// and the answer read within its cap and decoded. Non-2xx answers become
// *Error, no answer a *TransportError. It keeps cs.unknown up to date.
func (c *Client) send(ctx context.Context, cs *callState, tok *oauth2.Token, n int) error {
	var written atomic.Bool
	if cs.op.mutates() {
		// Whether the request left before the connection failed tells an
		// attempt that cannot have acted from one that may have.
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) },
		})
	}
	// No body here: Sign installs it (a reader over the exact bytes signed).
	req, err := http.NewRequestWithContext(ctx, cs.op.method, cs.url, nil)
	if err != nil {
		return fmt.Errorf("upvest: %s: building the request: %w", cs.op.name, err)
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
		return fmt.Errorf("upvest: %s: signing the request: %w", cs.op.name, err)
	}
	// Without GetBody, net/http never replays the request by itself (it would
	// for a POST with an idempotency-key), which would repeat this signature's
	// nonce. The retry loop re-signs instead.
	req.GetBody = nil

	cs.attempts++
	start := time.Now()
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		if written.Load() {
			cs.unknown = true
		}
		err = &TransportError{Op: cs.op.name, Err: err}
		c.recordAttempt(ctx, cs.op.name, req, 0, nil, n, time.Since(start), err)
		return err
	}
	defer resp.Body.Close()
	cs.status = resp.StatusCode
	cs.requestID = cleanText(resp.Header.Get("Upvest-Request-Id"), maxRequestID)

	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		err = cs.readSuccess(resp)
	} else {
		b, _ := readCapped(resp.Body, maxErrorBody, resp.ContentLength) // a partial body still tells something
		e := ParseProblem(resp.StatusCode, resp.Header, b)
		redactError(e, tok.AccessToken)
		err = e
		if cs.op.mutates() {
			switch resp.StatusCode {
			case http.StatusConflict, http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
				cs.unknown = true // in flight upstream, or failed somewhere after it arrived
			case http.StatusTooManyRequests, http.StatusServiceUnavailable:
				// Refused before acting: what an earlier attempt did is still
				// as unknown (or known) as it was.
			default:
				cs.unknown = false
			}
		}
	}
	c.recordAttempt(ctx, cs.op.name, req, resp.StatusCode, resp.Header, n, time.Since(start), err)
	return err
}

// readSuccess reads and decodes a 2xx answer. A body that breaks off is
// retried, and so is one of a creating call that does not decode: its retry
// with the same idempotency-key gets the first answer back; until it does,
// the outcome is known to be a success but its answer is not.
func (cs *callState) readSuccess(resp *http.Response) error {
	if cs.op.noContent {
		// The 2xx status is the whole answer; a broken or oversize body does
		// not undo it, and retrying a done DELETE would only fail. Read only
		// to keep the connection reusable.
		_, _ = readCapped(resp.Body, maxErrorBody, resp.ContentLength)
		cs.unknown = false
		return nil
	}
	body, err := readCapped(resp.Body, maxSuccessBody, resp.ContentLength)
	switch {
	case errors.Is(err, errTooLarge):
		err = fmt.Errorf("upvest: %s: %w: status %d, body over %d bytes%s", cs.op.name, ErrMalformedAnswer, resp.StatusCode, maxSuccessBody, requestIDSuffix(cs.requestID))
	case err != nil:
		// The answer broke off: as good as none, and as safe to retry.
		err = &TransportError{Op: cs.op.name, Err: err}
	case cs.decode != nil:
		if derr := cs.decode(body); derr != nil {
			err = fmt.Errorf("upvest: %s: %w: status %d%s: %w", cs.op.name, ErrMalformedAnswer, resp.StatusCode, requestIDSuffix(cs.requestID), derr)
			if cs.op.mutates() {
				// Upvest acted; only its answer is missing. A read's
				// malformed answer would be the same again.
				err = &malformedError{err}
			}
		}
	}
	cs.unknown = err != nil && cs.op.mutates()
	return err
}

// malformedError is a 2xx answer that could not be used; worth asking for
// again.
type malformedError struct{ error }

func (e *malformedError) Unwrap() error { return e.error }

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
