package webhook

import (
	"context"
	"crypto"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// Defaults of the receiver.
const (
	// DefaultMaxBody caps a delivery: twice the largest max_package_size a
	// subscription may have (1 MiB), since Upvest sends an event larger than
	// that on its own.
	DefaultMaxBody = 2 << 20
	// DefaultAppendTimeout bounds the wait for the log's acknowledgements,
	// so a stuck log turns into a 503 and a retry rather than a hung request.
	DefaultAppendTimeout = 10 * time.Second
	// DefaultMaxSignatureAge is how old a delivery's signature may be. Upvest
	// may re-send a delivery with its original signature for as long as an
	// outage lasts, and a refused one holds back every later delivery, so
	// it is as long as the log remembers event ids (the default duplicate
	// window): within it a replay stores nothing twice.
	DefaultMaxSignatureAge = events.DefaultDuplicateWindow
	// MaxClockSkew is how far in the future a signature's created may be.
	MaxClockSkew = httpsig.DefaultMaxSkew
)

// Appender stores events; *events.Log is one. The contract is Log.Append's:
// nil when every event is stored; a *events.DeliveryError naming the index
// of an event the log can never store; anything else is temporary.
type Appender interface {
	Append(ctx context.Context, events []events.Event) error
}

// sizeLimited is an Appender that knows the largest event it can store
// (*events.Log: MaxEventSize), so that a larger one is quarantined before
// it is tried.
type sizeLimited interface {
	MaxEventSize() int
}

// Quarantine keeps what the log cannot take; *events.Quarantine is one.
type Quarantine interface {
	Add(ctx context.Context, recs ...events.QuarantinedEvent) error
}

// Receiver is the http.Handler for POST /webhooks/upvest.
//
// A delivery whose signature verifies, and that is ours (see Subscriptions),
// is answered 200 once every event in it is either stored in the log or in
// the quarantine with the reason: a malformed event, one the log refuses for
// good (too large for a NATS message, say), even a body that is not a
// delivery at all, never makes Upvest retry, since Upvest holds back every
// later delivery while it retries one. The answers that make Upvest retry
// are 401 (bad signature), 429 (too many failed verifications from the
// sender), 503 (the log, the quarantine or Upvest's keys unavailable) and
// 413 (above the body cap: raise it). A 403 (another tenant's delivery), 401,
// 413 or 429 stores nothing. A 503 may come after part of the delivery was
// stored; that is safe, as the log and the quarantine de-duplicate by event
// id and by content within the duplicate window, so the retry stores what is
// missing and nothing twice.
//
// Errors are application/problem+json. Each delivery is logged with its
// verdict, event counts and key id, each quarantined event with its record
// id and reason, never a body.
type Receiver struct {
	log             Appender
	quarantine      Quarantine
	keys            *keyCache
	resolve         httpsig.KeyResolver
	limiter         *verifyLimiter
	logger          *slog.Logger
	maxBody         int64
	now             func() time.Time
	appendTimeout   time.Duration
	maxSignatureAge time.Duration
	clientID        string
	subs            *Subscriptions
	limits          RateLimits
	stats           stats
	metrics         *metrics.Metrics
}

// NewReceiver returns a receiver appending to log, quarantining what log
// cannot take in quarantine, and verifying signatures with the keys from
// keys. All three are required.
func NewReceiver(log Appender, quarantine Quarantine, keys KeySource, opts ...Option) *Receiver {
	r := &Receiver{
		log:             log,
		quarantine:      quarantine,
		logger:          slog.New(slog.DiscardHandler),
		maxBody:         DefaultMaxBody,
		now:             time.Now,
		appendTimeout:   DefaultAppendTimeout,
		maxSignatureAge: DefaultMaxSignatureAge,
		limits:          DefaultRateLimits,
		keys: &keyCache{
			source:   keys,
			interval: DefaultKeyRefetchInterval,
			maxAge:   DefaultKeyMaxAge,
		},
	}
	for _, opt := range opts {
		if opt != nil {
			opt.applyReceiver(r)
		}
	}
	r.keys.now = r.now
	r.limiter = newVerifyLimiter(r.limits)
	r.resolve = func(ctx context.Context, kid string) (crypto.PublicKey, error) {
		// Every delivery that reaches the key lookup costs a verification.
		r.stats.verifications.Add(1)
		return r.keys.resolve(ctx, kid)
	}
	r.logBinding()
	return r
}

// logBinding says at start-up what binds deliveries to this tenant.
func (rc *Receiver) logBinding() {
	if n := rc.subs.Len(); n > 0 {
		rc.logger.Info("webhook: deliveries must name one of our webhook subscriptions, and carry our upvest-client-id where their signature covers it",
			"subscriptions", n, "client_id_bound", rc.clientID != "")
		return
	}
	rc.logger.Warn("webhook: no webhook subscription ids known (GATEWAY_WEBHOOK_IDS is empty): deliveries are bound to this tenant only by "+
		"upvest-client-id, where their signature covers it; Upvest's v6 delivery signatures do not, so another tenant's delivery to this URL "+
		"would be accepted. Set GATEWAY_WEBHOOK_IDS to the ids of this gateway's webhook subscriptions.",
		"client_id_bound", rc.clientID != "")
}

// An Option configures NewReceiver.
type Option interface{ applyReceiver(*Receiver) }

type receiverOption func(*Receiver)

func (o receiverOption) applyReceiver(r *Receiver) { o(r) }

// WithLogger sets where each delivery's verdict is logged (default:
// nowhere).
func WithLogger(l *slog.Logger) Option {
	return receiverOption(func(r *Receiver) {
		if l != nil {
			r.logger = l
		}
	})
}

// WithMaxBody caps the delivery body (default DefaultMaxBody); larger ones
// get 413.
func WithMaxBody(n int64) Option {
	return receiverOption(func(r *Receiver) {
		if n > 0 {
			r.maxBody = n
		}
	})
}

// WithClock replaces time.Now for the signature's validity window, the key
// cache and the rate limits, for tests.
func WithClock(now func() time.Time) Option {
	return receiverOption(func(r *Receiver) {
		if now != nil {
			r.now = now
		}
	})
}

// WithKeyRefetch sets the least time between key fetches (default 30 s)
// and how long fetched keys are used (default 1 h).
func WithKeyRefetch(interval, maxAge time.Duration) Option {
	return receiverOption(func(r *Receiver) {
		if interval > 0 {
			r.keys.interval = interval
		}
		if maxAge > 0 {
			r.keys.maxAge = maxAge
		}
	})
}

// WithAppendTimeout bounds the wait for the log (default 10 s).
func WithAppendTimeout(d time.Duration) Option {
	return receiverOption(func(r *Receiver) {
		if d > 0 {
			r.appendTimeout = d
		}
	})
}

// WithMaxSignatureAge sets how old a delivery's signature may be (default
// DefaultMaxSignatureAge). Keep it within the log's duplicate window, where
// a replayed delivery stores nothing twice. The signature's own expires is
// not checked: Upvest re-sends a delivery with its original signature.
func WithMaxSignatureAge(d time.Duration) Option {
	return receiverOption(func(r *Receiver) {
		if d > 0 {
			r.maxSignatureAge = d
		}
	})
}

// WithClientID binds deliveries whose signature covers upvest-client-id to
// this client id (the gateway's UPVEST_CLIENT_ID): another one is refused
// with 403.
func WithClientID(id string) Option {
	return receiverOption(func(r *Receiver) { r.clientID = strings.TrimSpace(id) })
}

// WithSubscriptions binds deliveries to these webhook subscriptions: while
// s holds any id, an event naming another is refused with its whole
// delivery (403), and one naming none is quarantined. s may grow later
// (Subscriptions.Add), as the gateway learns of its subscriptions.
func WithSubscriptions(s *Subscriptions) Option {
	return receiverOption(func(r *Receiver) { r.subs = s })
}

// WithRateLimits sets the budgets of signature verifications (default
// DefaultRateLimits); limits with a zero field are ignored.
func WithRateLimits(l RateLimits) Option {
	return receiverOption(func(r *Receiver) {
		if l.valid() {
			r.limits = l
		}
	})
}

// WithMetrics records every delivery's answer (and a refusal's reason),
// the events stored and quarantined, and each append to the log (its
// latency, and whether it failed) in m.
func WithMetrics(m *metrics.Metrics) Option {
	return receiverOption(func(r *Receiver) { r.metrics = m })
}

// Stats are the receiver's counters since it started.
type Stats struct {
	Deliveries    uint64 // answered, whatever the answer
	Stored        uint64 // events appended to the log (or found there already)
	Quarantined   uint64 // events (or whole bodies) put in the quarantine
	Verifications uint64 // signatures that reached the key lookup and the cryptographic check
	RateLimited   uint64 // deliveries answered 429 before any verification
	Foreign       uint64 // correctly signed deliveries refused as another tenant's
}

type stats struct {
	deliveries, stored, quarantined, verifications, rateLimited, foreign atomic.Uint64
}

// Stats returns the receiver's counters.
func (rc *Receiver) Stats() Stats {
	return Stats{
		Deliveries:    rc.stats.deliveries.Load(),
		Stored:        rc.stats.stored.Load(),
		Quarantined:   rc.stats.quarantined.Load(),
		Verifications: rc.stats.verifications.Load(),
		RateLimited:   rc.stats.rateLimited.Load(),
		Foreign:       rc.stats.foreign.Load(),
	}
}

// ServeHTTP handles one delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	d := delivery{status: http.StatusOK, verdict: "stored"}
	defer func() {
		rc.stats.deliveries.Add(1)
		rc.record(&d)
		rc.logDelivery(req, &d, start)
	}()

	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		d.reject(w, http.StatusMethodNotAllowed, "method_not_allowed", "deliveries are POST requests")
		return
	}
	body, ok := rc.readBody(w, req, &d)
	if !ok {
		return
	}
	// The budget is taken once the body is in, so that a delivery holds its
	// tokens only while its signature is checked: taken before, they were
	// held while bodies arrived, and a burst of Upvest's own deliveries
	// after a pause could use up the burst before any had given its back.
	refund, wait, ok := rc.limiter.take(req.RemoteAddr, rc.now())
	if !ok {
		rc.stats.rateLimited.Add(1)
		d.status, d.verdict = http.StatusTooManyRequests, "rate_limited"
		writeProblemRetry(w, d.status, d.verdict, "too many deliveries failed verification; retry later", wait)
		return
	}

	v, err := httpsig.Verify(req.Context(), req, body, rc.resolve, httpsig.VerifyOptions{
		Now:           rc.now,
		MaxSkew:       MaxClockSkew,
		MaxAge:        rc.maxSignatureAge,
		IgnoreExpires: true,
		Required:      []string{"@method"},
	})
	if err != nil {
		d.keyID = keyIDOf(req)
		d.cause = err
		switch {
		case errors.Is(err, errKeysUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// Not the sender's fault: 5xx, and Upvest retries.
			d.reject(w, http.StatusServiceUnavailable, "verify_keys_unavailable", "the signature cannot be checked right now")
		default:
			d.reject(w, http.StatusUnauthorized, "unauthorized", "signature verification failed: "+httpsig.ReasonOf(err))
		}
		return
	}
	refund() // Upvest: its deliveries do not use up the budget
	d.keyID, d.version = v.KeyID, v.Version

	if !rc.ourClient(req, v) {
		rc.stats.foreign.Add(1)
		d.reject(w, http.StatusForbidden, "foreign_delivery", "the delivery is for another Upvest client")
		return
	}

	ctx, cancel := context.WithTimeout(events.CountDuplicates(req.Context(), &d.duplicates), rc.appendTimeout)
	defer cancel()
	raws, err := parseEnvelope(body)
	if err != nil {
		// Not a delivery at all: nothing in it can be bound or stored, and
		// refusing it would stall every later delivery. Keep it for an
		// operator, never streamed.
		rec := record(body, -1, reasonOf(err), v.KeyID)
		if err := rc.keep(ctx, &d, []events.QuarantinedEvent{rec}); err != nil {
			d.cause = err
			d.reject(w, http.StatusServiceUnavailable, "quarantine_unavailable", "the delivery could not be kept; retry later")
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}

	items := judge(raws)
	if !rc.ourSubscriptions(items) {
		rc.stats.foreign.Add(1)
		d.reject(w, http.StatusForbidden, "foreign_delivery", "the delivery is for a webhook subscription this gateway does not know")
		return
	}
	rc.checkSizes(items)
	stored, err := rc.store(ctx, items)
	d.events = stored
	if err != nil {
		d.cause = err
		d.reject(w, http.StatusServiceUnavailable, "log_unavailable", "the events could not be stored; retry later")
		return
	}
	var recs []events.QuarantinedEvent
	for _, it := range items {
		if it.err != nil {
			recs = append(recs, record(it.raw, it.index, reasonOf(it.err), v.KeyID))
		}
	}
	if err := rc.keep(ctx, &d, recs); err != nil {
		d.cause = err
		d.reject(w, http.StatusServiceUnavailable, "quarantine_unavailable", "the malformed events could not be kept; retry later")
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// readBody reads the body within the cap.
func (rc *Receiver) readBody(w http.ResponseWriter, req *http.Request, d *delivery) ([]byte, bool) {
	tooLarge := func() {
		d.reject(w, http.StatusRequestEntityTooLarge, "too_large", "the body exceeds "+strconv.FormatInt(rc.maxBody, 10)+" bytes")
	}
	if req.ContentLength > rc.maxBody {
		tooLarge()
		return nil, false
	}
	// The time to send the body is the server's to bound (the gateway's
	// listeners give every request body GATEWAY_HTTP_BODY_TIMEOUT).
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, rc.maxBody))
	d.bytes = len(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge()
		} else {
			d.reject(w, http.StatusBadRequest, "unreadable_body", "the body could not be read")
		}
		return nil, false
	}
	return body, true
}

// ourClient reports whether the delivery is for our client id, as far as
// its signature covers upvest-client-id (see binding.go).
func (rc *Receiver) ourClient(req *http.Request, v *httpsig.Verified) bool {
	if rc.clientID == "" || !slices.Contains(v.Components, "upvest-client-id") {
		return true
	}
	vals := req.Header.Values("Upvest-Client-Id")
	return len(vals) == 1 && strings.EqualFold(strings.TrimSpace(vals[0]), rc.clientID)
}

// ourSubscriptions reports whether no event names a webhook subscription
// other than ours. While our subscriptions are known, an event naming none
// (or no UUID) cannot be bound: it is marked for the quarantine, where it
// is kept but never streamed.
func (rc *Receiver) ourSubscriptions(items []item) bool {
	if rc.subs.Len() == 0 {
		return true
	}
	for i := range items {
		it := &items[i]
		switch {
		case it.webhookID == "":
			if it.err == nil {
				it.err = &events.DeliveryError{Index: it.index, Field: "webhook_id",
					Reason: "missing: the event cannot be bound to one of this gateway's webhook subscriptions"}
			}
		case !rc.subs.Contains(it.webhookID):
			return false
		}
	}
	return true
}

// checkSizes marks for the quarantine the events larger than the log can
// store: a permanent failure, not a 503 Upvest would retry forever.
func (rc *Receiver) checkSizes(items []item) {
	sl, ok := rc.log.(sizeLimited)
	if !ok {
		return
	}
	limit := sl.MaxEventSize()
	for i := range items {
		if it := &items[i]; it.err == nil {
			if err := events.CheckSize(&it.event, limit); err != nil {
				it.err = withIndex(err, it.index)
			}
		}
	}
}

// store appends the valid items, moving those the log refuses for good to
// the quarantine (their err set), and returns how many are stored. Its
// error is temporary: the delivery gets 503.
func (rc *Receiver) store(ctx context.Context, items []item) (int, error) {
	var pending []*item
	for i := range items {
		if items[i].err == nil {
			pending = append(pending, &items[i])
		}
	}
	for len(pending) > 0 {
		err := rc.append(ctx, eventsOf(pending))
		var de *events.DeliveryError
		switch {
		case err == nil:
			rc.stats.stored.Add(uint64(len(pending)))
			return countStored(items), nil
		case errors.As(err, &de) && de.Index >= 0 && de.Index < len(pending):
			// Final for that event: quarantine it, and append the rest again
			// (those already stored are recognised as duplicates).
			it := pending[de.Index]
			it.err = &events.DeliveryError{Index: it.index, Field: de.Field, Reason: de.Reason}
			pending = slices.Delete(pending, de.Index, de.Index+1)
		case events.IsTooLarge(err):
			// The size check above should have caught it; the log does not
			// say which event it was, so try them one at a time.
			return rc.storeEach(ctx, items, pending)
		default:
			return 0, err
		}
	}
	return countStored(items), nil
}

func (rc *Receiver) storeEach(ctx context.Context, items []item, pending []*item) (int, error) {
	for _, it := range pending {
		err := rc.append(ctx, []events.Event{it.event})
		var de *events.DeliveryError
		switch {
		case err == nil:
			rc.stats.stored.Add(1)
		case events.IsTooLarge(err):
			it.err = &events.DeliveryError{Index: it.index, Reason: "too large for the event log"}
		case errors.As(err, &de):
			it.err = &events.DeliveryError{Index: it.index, Field: de.Field, Reason: de.Reason}
		default:
			return 0, err
		}
	}
	return countStored(items), nil
}

// append appends evs to the log, timing it. An event the log refuses for
// good is no failure of the log's: only the others count as append errors.
func (rc *Receiver) append(ctx context.Context, evs []events.Event) error {
	start := time.Now()
	err := rc.log.Append(ctx, evs)
	failed := err
	if _, final := errors.AsType[*events.DeliveryError](err); final || events.IsTooLarge(err) {
		failed = nil
	}
	rc.metrics.Append(time.Since(start), failed)
	return err
}

func eventsOf(items []*item) []events.Event {
	evs := make([]events.Event, len(items))
	for i, it := range items {
		evs[i] = it.event
	}
	return evs
}

func countStored(items []item) int {
	n := 0
	for _, it := range items {
		if it.err == nil {
			n++
		}
	}
	return n
}

// keep puts recs in the quarantine, and counts and logs each.
func (rc *Receiver) keep(ctx context.Context, d *delivery, recs []events.QuarantinedEvent) error {
	if len(recs) == 0 {
		return nil
	}
	if rc.quarantine == nil {
		return errors.New("webhook: no quarantine configured")
	}
	if err := rc.quarantine.Add(ctx, recs...); err != nil {
		return err
	}
	d.quarantined = len(recs)
	rc.stats.quarantined.Add(uint64(len(recs)))
	for _, r := range recs {
		// The reason names the field, never its value.
		rc.logger.Warn("webhook: event quarantined", "record", r.ID, "index", r.Index, "reason", r.Reason, "bytes", r.Size, "keyid", r.KeyID)
	}
	return nil
}

// reasonOf is a quarantine reason: the DeliveryError without its package
// prefix.
func reasonOf(err error) string {
	return strings.TrimPrefix(err.Error(), "events: ")
}

func withIndex(err error, index int) error {
	var de *events.DeliveryError
	if errors.As(err, &de) {
		return &events.DeliveryError{Index: index, Field: de.Field, Reason: de.Reason}
	}
	return &events.DeliveryError{Index: index, Reason: "cannot be stored"}
}

// delivery collects what is logged about one request.
type delivery struct {
	status      int
	verdict     string
	keyID       string
	version     int
	events      int          // stored in the log, duplicates included
	duplicates  atomic.Int64 // of them, already in the log
	quarantined int
	bytes       int
	cause       error
}

func (d *delivery) reject(w http.ResponseWriter, status int, verdict, detail string) {
	d.status, d.verdict = status, verdict
	writeProblem(w, status, verdict, detail)
}

// rejectionReasons name the refusals in the metrics, where they differ
// from the verdicts in the log.
var rejectionReasons = map[string]string{
	"unauthorized":            "bad_signature",
	"foreign_delivery":        "foreign_tenant",
	"verify_keys_unavailable": "keys_unavailable",
}

// record counts the delivery in the metrics.
func (rc *Receiver) record(d *delivery) {
	if rc.metrics == nil {
		return
	}
	reason := d.verdict
	if r, ok := rejectionReasons[reason]; ok {
		reason = r
	}
	rc.metrics.WebhookDelivery(d.status, reason)
	dups := int(d.duplicates.Load())
	rc.metrics.WebhookEvents("stored", d.events-dups)
	rc.metrics.WebhookEvents("duplicate", dups)
	rc.metrics.WebhookEvents("quarantined", d.quarantined)
}

func (rc *Receiver) logDelivery(req *http.Request, d *delivery, start time.Time) {
	level := slog.LevelInfo
	switch {
	case d.status >= 500:
		level = slog.LevelError
	case d.status >= 400, d.quarantined > 0:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Int("status", d.status),
		slog.String("verdict", d.verdict),
		slog.Int("events", d.events),
		slog.Int("quarantined", d.quarantined),
		slog.String("keyid", d.keyID),
		slog.Int("bytes", d.bytes),
		slog.Duration("duration", time.Since(start)),
	}
	if d.version != 0 {
		attrs = append(attrs, slog.Int("signature_version", d.version))
	}
	if d.cause != nil {
		// Our errors name fields and reasons, never values or secrets.
		attrs = append(attrs, slog.String("err", d.cause.Error()))
	}
	rc.logger.LogAttrs(req.Context(), level, "webhook delivery", attrs...)
}

// keyIDOf extracts the key id a rejected delivery claims, for the log only.
// It is sender-controlled, so it is length-limited.
func keyIDOf(req *http.Request) string {
	params, err := httpsig.ParseSignatureInput(req.Header.Get(httpsig.HeaderSignatureInput))
	if err != nil || len(params) == 0 {
		return ""
	}
	return truncate(params[0].KeyID, 64)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
