package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/broker"
)

var (
	// ErrClosed is returned by a Log that has been closed, and ends its
	// subscriptions.
	ErrClosed = errors.New("events: log closed")
	// ErrUnavailable wraps failures to reach the log (NATS down, no
	// JetStream, timeouts). Callers answer 503 / UNAVAILABLE: retrying later
	// is safe.
	ErrUnavailable = errors.New("events: log unavailable")
)

// Log is the event log: one JetStream stream. It is safe for concurrent use.
type Log struct {
	cfg    LogConfig
	logger *slog.Logger
	broker *broker.Broker
	nc     *nats.Conn
	js     jetstream.JetStream

	// multiFilter caches whether the server takes several filter subjects
	// per consumer (NATS >= 2.10): 0 unknown, 1 yes, 2 no.
	multiFilter atomic.Int32

	// fanout tails the log for every subscriber; catchUps holds a token for
	// each catch-up reading the log with a consumer of its own.
	fanout   *fanout
	catchUps chan struct{}
	durable  *durableMark

	closeOnce sync.Once
	// closed is done once Close is called: a context, so that a Watch can
	// have it wake its subscriber rather than wait on it too.
	closed   context.Context
	closeNow context.CancelFunc
}

// Open creates the stream on b, or brings its limits up to date, so the
// log is ready to take events when Open returns. The caller owns b and
// closes it after the log.
func Open(ctx context.Context, b *broker.Broker, cfg LogConfig, opts ...LogOption) (*Log, error) {
	cfg, o, err := prepare(b, cfg, opts)
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, logger: o.logger, broker: b, nc: b.Conn(), js: b.JetStream(),
		catchUps: make(chan struct{}, o.catchUps), durable: newDurableMark()}
	l.closed, l.closeNow = context.WithCancel(context.Background())
	l.fanout = newFanout(l, o.recentEvents)
	if err := l.ensureStream(ctx); err != nil {
		return nil, err
	}
	// With group commit the stream's creation is durable only once synced.
	if err := b.Sync(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return l, nil
}

// ensureStream creates the stream or brings its limits up to date. Every
// replica does this at start-up; the stream is shared, so the last one
// started sets the limits.
func (l *Log) ensureStream(ctx context.Context) error {
	sc := jetstream.StreamConfig{
		Name:        l.cfg.Stream,
		Description: "Upvest webhook events, de-duplicated on event id (upvest-gateway)",
		Subjects:    []string{l.cfg.Subject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      l.cfg.MaxAge,
		MaxBytes:    l.cfg.MaxBytes,
		Duplicates:  l.cfg.DuplicateWindow,
		Replicas:    l.cfg.Replicas,
	}
	s, err := l.js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return fmt.Errorf("%w: creating stream %s: %w", ErrUnavailable, l.cfg.Stream, err)
	}
	info := s.CachedInfo()
	l.logger.Info("events: log ready",
		"stream", l.cfg.Stream, "subject", l.cfg.Subject+".>", "embedded", l.broker.Embedded(),
		"max_age", l.cfg.MaxAge, "max_bytes", l.cfg.MaxBytes, "duplicate_window", l.cfg.DuplicateWindow,
		"messages", info.State.Msgs)
	return nil
}

// Config returns the configuration in effect, defaults filled in.
func (l *Log) Config() LogConfig { return l.cfg }

// Append stores events, each under its subject with Nats-Msg-Id = event id,
// and returns nil only when every one is acknowledged by JetStream and, on
// the embedded server with group commit (broker.Config.GroupCommit),
// durable on disk. An event already stored within the duplicate window is
// acknowledged as a duplicate and counts as stored: upstream delivers at
// least once.
//
// The publishes are pipelined, so a batch costs about one round trip; then
// the broker makes them durable with one fsync pass shared with every
// concurrent Append (group commit), rather than one fsync per event.
//
// Every event is encoded before the first is published: an event the log
// cannot store as it is fails the whole call with a *DeliveryError naming
// its index, and nothing is stored. That error is final (appending the same
// events fails the same way), so it is not ErrUnavailable.
//
// On any other error (ErrUnavailable, ErrClosed) some events may be stored
// and others not; appending the same events again is safe, as the stored
// ones are recognised as duplicates within the duplicate window.
func (l *Log) Append(ctx context.Context, events []Event) error {
	if l.isClosed() {
		return ErrClosed
	}
	if len(events) == 0 {
		return nil
	}
	msgs := make([]*nats.Msg, len(events))
	for i := range events {
		msg, err := l.message(i, &events[i])
		if err != nil {
			return err
		}
		msgs[i] = msg
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, msg := range msgs {
		f, err := l.js.PublishMsgAsync(msg, jetstream.WithExpectStream(l.cfg.Stream))
		if err != nil {
			return l.unavailable("publishing", err)
		}
		futures = append(futures, f)
	}
	var last uint64 // highest sequence acknowledged (a duplicate's is its original's)
	dups := duplicatesCounter(ctx)
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
			if ack.Duplicate && dups != nil {
				dups.Add(1)
			}
		case err := <-f.Err():
			return l.unavailable("storing", err)
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for acknowledgement: %w", ErrUnavailable, ctx.Err())
		case <-l.closed.Done():
			return ErrClosed
		}
	}
	if err := l.broker.Sync(ctx); err != nil {
		return l.unavailable("syncing", err)
	}
	l.durable.advance(last)
	return nil
}

// message encodes e, the event at index i of a delivery, as the log stores
// it, making sure that nothing is stored that a subscriber could not decode:
// an event ParseEvent accepted and no one changed since reads back as
// itself; any other is read back first. Its errors are *DeliveryError with
// Index i.
func (l *Log) message(i int, e *Event) (*nats.Msg, error) {
	data, err := e.MarshalJSON()
	if err != nil {
		// The cause may quote the object's bytes: not in the error.
		return nil, &DeliveryError{Index: i, Reason: "cannot be encoded as JSON"}
	}
	stored := e
	if !e.unchangedSinceParse() {
		back, err := parseEvent(data)
		if err != nil {
			var de *DeliveryError
			if errors.As(err, &de) {
				de.Index = i
				de.Reason = "cannot be stored: " + de.Reason
				return nil, de
			}
			return nil, &DeliveryError{Index: i, Reason: "cannot be stored"}
		}
		stored = &back
	}
	msg := nats.NewMsg(eventSubject(l.cfg.Subject, stored))
	msg.Header.Set(jetstream.MsgIDHeader, stored.ID)
	msg.Data = data
	return msg, nil
}

func (l *Log) unavailable(what string, err error) error {
	if l.isClosed() {
		return ErrClosed
	}
	return fmt.Errorf("%w: %s event: %w", ErrUnavailable, what, err)
}

// Check reports whether the log can be reached, e.g. for a readiness probe.
func (l *Log) Check(ctx context.Context) error {
	if l.isClosed() {
		return ErrClosed
	}
	if err := l.broker.StorageErr(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if _, err := l.streamInfo(ctx); err != nil {
		return err
	}
	return nil
}

// streamInfo returns the stream's state and identity.
func (l *Log) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := l.js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		if l.isClosed() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("%w: stream %s: %w", ErrUnavailable, l.cfg.Stream, err)
	}
	return s.CachedInfo(), nil
}

func (l *Log) identity(info *jetstream.StreamInfo) streamIdentity {
	return newStreamIdentity(l.cfg.Stream, info.Created.UnixNano())
}

func (l *Log) isClosed() bool {
	select {
	case <-l.closed.Done():
		return true
	default:
		return l.broker.IsClosed()
	}
}

// Close ends every subscription with ErrClosed. The broker stays open: its
// owner closes it after the log. It is safe to call more than once.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.closeNow()
		l.fanout.stop()
	})
	return nil
}

type duplicatesKey struct{}

// CountDuplicates returns a context under which Append adds to n the events
// it found already in the log (the same event id within the duplicate
// window): Upvest's repeated deliveries, counted for the metrics.
func CountDuplicates(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, duplicatesKey{}, n)
}

func duplicatesCounter(ctx context.Context) *atomic.Int64 {
	n, _ := ctx.Value(duplicatesKey{}).(*atomic.Int64)
	return n
}

// prepare fills in cfg's defaults, checks it fits b, and applies opts: what
// the log and its quarantine both begin with.
func prepare(b *broker.Broker, cfg LogConfig, opts []LogOption) (LogConfig, logOptions, error) {
	o := logOptions{logger: slog.New(slog.DiscardHandler), catchUps: DefaultCatchUps, recentEvents: DefaultRecentEvents}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return cfg, o, err
	}
	if cfg.Replicas > 1 && b.Embedded() {
		return cfg, o, errors.New("events: the embedded NATS server has one replica")
	}
	for _, opt := range opts {
		if opt != nil {
			opt.applyLog(&o)
		}
	}
	return cfg, o, nil
}
