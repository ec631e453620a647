package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// Defaults of the receiver.
const (
	// DefaultMaxBody caps a delivery; Upvest batches events up to the
	// subscription's max_package_size, well below this.
	DefaultMaxBody = 1 << 20
	// DefaultAppendTimeout bounds the wait for the log's acknowledgements,
	// so a stuck log turns into a 503 and a retry rather than a hung request.
	DefaultAppendTimeout = 10 * time.Second
)

// Appender stores events; *events.Log is one.
type Appender interface {
	Append(ctx context.Context, events []events.Event) error
}

// Receiver is the http.Handler for POST /webhooks/upvest.
//
// It answers 200 only once every event of the delivery is acknowledged by
// the log. A 401 (bad signature), 400 (malformed delivery, or an event the
// log refuses) or 413 (too large) stores nothing. A 503 (log or keys
// unavailable) may come after the log stored part of the delivery: a
// publish can be acknowledged and the next one fail, or the acknowledgements
// time out after the events were stored. That is safe: Upvest retries the
// delivery, and the log de-duplicates every event by id within its
// DuplicateWindow, so the retry stores what is missing and nothing twice.
// Errors are application/problem+json. Each delivery is logged with its verdict, event
// count and key id, never its body.
type Receiver struct {
	log           Appender
	keys          *keyCache
	logger        *slog.Logger
	maxBody       int64
	now           func() time.Time
	appendTimeout time.Duration
}

// NewReceiver returns a receiver appending to log and verifying signatures
// with the keys from keys.
func NewReceiver(log Appender, keys KeySource, opts ...Option) *Receiver {
	r := &Receiver{
		log:           log,
		logger:        slog.New(slog.DiscardHandler),
		maxBody:       DefaultMaxBody,
		now:           time.Now,
		appendTimeout: DefaultAppendTimeout,
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
	return r
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

// WithMaxBody caps the delivery body (default 1 MiB); larger ones get 413.
func WithMaxBody(n int64) Option {
	return receiverOption(func(r *Receiver) {
		if n > 0 {
			r.maxBody = n
		}
	})
}

// WithClock replaces time.Now for the signature's validity window and the key
// cache, for tests.
func WithClock(now func() time.Time) Option {
	return receiverOption(func(r *Receiver) {
		if now != nil {
			r.now = now
		}
	})
}

// WithKeyRefetch sets the least time between fetches caused by unknown key
// ids (default 30 s) and how long fetched keys are used (default 1 h).
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

// ServeHTTP handles one delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	d := delivery{status: http.StatusOK, verdict: "stored"}
	defer func() { rc.logDelivery(req, &d, start) }()

	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		d.reject(w, http.StatusMethodNotAllowed, "method_not_allowed", "deliveries are POST requests")
		return
	}
	if req.ContentLength > rc.maxBody {
		d.reject(w, http.StatusRequestEntityTooLarge, "too_large", "the body exceeds "+strconv.FormatInt(rc.maxBody, 10)+" bytes")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, rc.maxBody))
	d.bytes = len(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			d.reject(w, http.StatusRequestEntityTooLarge, "too_large", "the body exceeds "+strconv.FormatInt(rc.maxBody, 10)+" bytes")
			return
		}
		d.reject(w, http.StatusBadRequest, "unreadable_body", "the body could not be read")
		return
	}

	v, err := httpsig.Verify(req.Context(), req, body, rc.keys.resolve, httpsig.VerifyOptions{
		Now:      rc.now,
		Required: []string{"@method"},
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
	d.keyID, d.version = v.KeyID, v.Version

	evs, err := events.ParseDelivery(body)
	if err != nil {
		d.cause = err
		d.reject(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	d.events = len(evs)

	ctx, cancel := context.WithTimeout(req.Context(), rc.appendTimeout)
	defer cancel()
	if err := rc.log.Append(ctx, evs); err != nil {
		d.cause = err
		var de *events.DeliveryError
		if errors.As(err, &de) {
			// Refused before anything was stored; a retry fails the same way.
			d.reject(w, http.StatusBadRequest, "bad_request", de.Error())
			return
		}
		d.reject(w, http.StatusServiceUnavailable, "log_unavailable", "the events could not be stored; retry later")
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// delivery collects what is logged about one request.
type delivery struct {
	status  int
	verdict string
	keyID   string
	version int
	events  int
	bytes   int
	cause   error
}

func (d *delivery) reject(w http.ResponseWriter, status int, verdict, detail string) {
	d.status, d.verdict = status, verdict
	writeProblem(w, status, verdict, detail)
}

func (rc *Receiver) logDelivery(req *http.Request, d *delivery, start time.Time) {
	level := slog.LevelInfo
	if d.status >= 500 {
		level = slog.LevelError
	} else if d.status >= 400 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.Int("status", d.status),
		slog.String("verdict", d.verdict),
		slog.Int("events", d.events),
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
