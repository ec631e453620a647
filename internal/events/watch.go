package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Errors that end a subscription. Callers map them to gRPC codes as noted.
var (
	// ErrTokenExpired: the token points at events the log no longer holds
	// (past retention, or the log was re-created), or the subscription fell
	// behind retention. OUT_OF_RANGE: re-read the current state, then watch
	// without a token.
	ErrTokenExpired = errors.New("events: resume position is past the event log's retention; re-read the current state, then watch again without a resume token")
	// ErrBadToken: the token is not one this log issued, or was issued for
	// another filter. INVALID_ARGUMENT.
	ErrBadToken = errors.New("events: invalid resume token")
	// ErrSlowSubscriber: the subscriber's buffer stayed full for the stall
	// timeout. RESOURCE_EXHAUSTED; it may resume from its last token.
	ErrSlowSubscriber = errors.New("events: subscriber too slow, its buffer stayed full; resume from the last token")
)

// Defaults of the watch options.
const (
	DefaultHeartbeat = 15 * time.Second
	DefaultBuffer    = 256
	// DefaultStallTimeout is how long a full buffer is tolerated. A client
	// that reads at all drains some of it much sooner; one that stopped
	// reading (or whose connection is dead) is cut loose.
	DefaultStallTimeout = 10 * time.Second
)

// Message is what a subscriber receives: an event, or a heartbeat (Event
// nil). Token resumes exactly after this message.
type Message struct {
	Token string
	Event *Event
}

// A WatchOption configures Watch.
type WatchOption interface{ applyWatch(*watchOptions) }

type optionFunc func(*watchOptions)

func (f optionFunc) applyWatch(o *watchOptions) { f(o) }

type watchOptions struct {
	heartbeat time.Duration
	buffer    int
	stall     time.Duration
}

// WithHeartbeat sets the idle time after which a heartbeat is sent, and how
// often the subscription checks its position (default 15 s).
func WithHeartbeat(d time.Duration) WatchOption {
	return optionFunc(func(o *watchOptions) {
		if d > 0 {
			o.heartbeat = d
		}
	})
}

// WithBuffer sets how many events may wait for send (default 256).
func WithBuffer(n int) WatchOption {
	return optionFunc(func(o *watchOptions) {
		if n > 0 {
			o.buffer = n
		}
	})
}

// WithStallTimeout sets how long the buffer may stay full before the
// subscriber is ended with ErrSlowSubscriber (default 10 s).
func WithStallTimeout(d time.Duration) WatchOption {
	return optionFunc(func(o *watchOptions) {
		if d > 0 {
			o.stall = d
		}
	})
}

// Watch sends the events matching f to send, in log order, until ctx is
// done (ctx.Err()), send fails (its error), the log closes (ErrClosed), or
// the subscription cannot continue (ErrSlowSubscriber, ErrTokenExpired,
// ErrUnavailable). send is only ever called from the calling goroutine.
//
// Without a token Watch starts with events appended from now on; with one it
// continues exactly after the message that carried it: nothing missed,
// nothing repeated. A token resumes only the filter it was issued for. The
// first message is a heartbeat, so that a subscriber
// holds a token before any event arrives; further heartbeats follow whenever
// nothing was sent for the heartbeat interval.
//
// Every subscriber has its own JetStream consumer and a bounded buffer.
// When the buffer is full the consumer stops pulling, so replaying a long
// backlog is paced by send; when it stays full for the stall timeout, the
// subscriber is ended with ErrSlowSubscriber as soon as its send returns.
// Neither ever holds up Append or other subscribers.
func (l *Log) Watch(ctx context.Context, f Filter, resumeToken string, send func(Message) error, opts ...WatchOption) error {
	err := l.watch(ctx, f, resumeToken, send, opts)
	// Close closes the NATS connection too, so a subscription may see the
	// connection fail before it sees the log closed: that is a close.
	if errors.Is(err, ErrUnavailable) && l.isClosed() {
		return ErrClosed
	}
	return err
}

func (l *Log) watch(ctx context.Context, f Filter, resumeToken string, send func(Message) error, opts []WatchOption) error {
	o := watchOptions{heartbeat: DefaultHeartbeat, buffer: DefaultBuffer, stall: DefaultStallTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt.applyWatch(&o)
		}
	}
	subjects, err := f.Subjects(l.cfg.Subject)
	if err != nil {
		return err
	}
	var tok position
	if resumeToken != "" {
		if tok, err = decodeToken(resumeToken); err != nil {
			return ErrBadToken
		}
	}
	if l.isClosed() {
		return ErrClosed
	}

	info, err := l.streamInfo(ctx)
	if err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	id := l.identity(info)
	from := info.State.LastSeq // no token: only what is appended from now on
	filter := filterHash(subjects)
	if resumeToken != "" {
		if err := checkPosition(tok, id, info.State); err != nil {
			return err
		}
		// After the checks above, so that an expired token is expired
		// whatever the filter.
		if tok.filter != filter {
			return fmt.Errorf("%w: it was issued for another filter", ErrBadToken)
		}
		from = tok.seq
	}

	sub := newSubscription(l, subjects, from, o.buffer, o.stall)
	cons, cc, err := l.consume(ctx, subjects, from+1, sub)
	if err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	w := &watcher{log: l, id: id, filter: filter, sub: sub, cons: cons, send: send, floor: from, hw: from}
	w.noteInfo(info)
	defer w.stop(cc)

	// The first check also closes the window between checkPosition and the
	// consumer's creation, in which retention could have removed events
	// right after the token.
	if err := w.check(ctx, o.heartbeat, false); err != nil {
		return err
	}
	if err := w.heartbeat(); err != nil {
		return err
	}
	return w.run(ctx, o.heartbeat)
}

// checkPosition decides whether a token can be resumed from on this stream.
func checkPosition(tok position, id streamIdentity, st jetstream.StreamState) error {
	switch {
	case tok.streamHash != id.hash:
		return fmt.Errorf("%w: it belongs to another event log", ErrBadToken)
	case tok.created != id.created:
		// Same log name, new instance: the events behind the token are gone
		// just as if retention had removed them, and the remedy is the same.
		return fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired)
	case tok.seq > st.LastSeq:
		return fmt.Errorf("%w: it points beyond the end of the event log", ErrBadToken)
	case tok.seq+1 < st.FirstSeq:
		return ErrTokenExpired
	}
	return nil
}

// consume starts an ordered consumer (ephemeral, in order, recreated by the
// client library after a gap or reconnect from the last message received)
// at sequence start.
func (l *Log) consume(ctx context.Context, subjects []string, start uint64, sub *subscription) (jetstream.Consumer, jetstream.ConsumeContext, error) {
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
		// Backstop for consumers of a process that died; Watch deletes its
		// own on return.
		InactiveThreshold: time.Minute,
		NamePrefix:        nuid.Next(),
	}
	cfg.FilterSubjects = subjects
	if len(subjects) > 1 && l.multiFilter.Load() == multiFilterNo {
		cfg.FilterSubjects = []string{widen(subjects)}
	}
	cons, err := l.js.OrderedConsumer(ctx, l.cfg.Stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerMultipleFilterSubjectsNotSupported) {
		// NATS < 2.10 created the consumer without any filter: drop it and
		// filter on one subject covering all of them; subscription.handle
		// applies the exact filter.
		l.multiFilter.Store(multiFilterNo)
		l.deleteConsumer(cfg.NamePrefix + "_1")
		l.logger.Info("events: NATS server takes one filter subject per consumer; filtering the rest in the gateway")
		cfg.FilterSubjects = []string{widen(subjects)}
		cfg.NamePrefix = nuid.Next()
		cons, err = l.js.OrderedConsumer(ctx, l.cfg.Stream, cfg)
	}
	if err != nil {
		if l.isClosed() {
			return nil, nil, ErrClosed
		}
		return nil, nil, fmt.Errorf("%w: creating consumer: %w", ErrUnavailable, err)
	}
	if len(cfg.FilterSubjects) > 1 {
		l.multiFilter.Store(multiFilterYes)
	}
	cc, err := cons.Consume(sub.handle,
		jetstream.ConsumeErrHandler(sub.consumeError),
		jetstream.PullMaxMessages(min(max(sub.capacity(), 16), 512)),
	)
	if err != nil {
		if info := cons.CachedInfo(); info != nil {
			l.deleteConsumer(info.Name)
		}
		return nil, nil, fmt.Errorf("%w: consuming: %w", ErrUnavailable, err)
	}
	sub.setStopper(cc.Stop)
	return cons, cc, nil
}

const (
	multiFilterUnknown = iota
	multiFilterYes
	multiFilterNo
)

// deleteConsumer removes a consumer the gateway no longer needs rather than
// leaving it to the inactivity threshold. Best effort.
func (l *Log) deleteConsumer(name string) {
	if l.isClosed() || !l.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.js.DeleteConsumer(ctx, l.cfg.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		l.logger.Debug("events: deleting consumer", "consumer", name, "err", err)
	}
}

// watcher is the calling goroutine's side of a subscription: it sends,
// emits heartbeats and checks the position against retention.
type watcher struct {
	log    *Log
	id     streamIdentity
	filter uint32 // filterHash of the subjects, for the tokens
	sub    *subscription
	cons   jetstream.Consumer
	send   func(Message) error

	hw       uint64    // highest position handed to the subscriber; only grows
	floor    uint64    // every matching event up to here reached us while the log held it
	advance  uint64    // position a heartbeat may jump to ...
	advAfter uint64    // ... once everything received up to here was passed on
	lastSend time.Time // of a message or heartbeat

	// For gapFree: a received message at or before hw+1 and its
	// timestamp (zero: none yet), ...
	anchorSeq uint64
	anchorAt  time.Time
	verified  bool // ... whether a gap was checked with a stream info yet,
	// and the stream's limits and state at the last stream info.
	maxAge                        time.Duration
	maxBytes                      int64
	infoBytes, infoMsgs, infoLast uint64
}

func (w *watcher) run(ctx context.Context, interval time.Duration) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		// A stalled subscriber is ended before anything else: its consumer
		// has given up, so sending what is buffered would only delay that.
		select {
		case <-w.sub.slow:
			return ErrSlowSubscriber
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.log.closed:
			return ErrClosed
		case <-w.sub.slow:
			return ErrSlowSubscriber
		case err := <-w.sub.fatal:
			return err
		case d := <-w.sub.buf:
			if err := w.gapFree(ctx, &d, interval); err != nil {
				return err
			}
			ev := d.event
			if err := w.send(Message{Token: w.id.token(w.filter, d.seq), Event: &ev}); err != nil {
				return err
			}
			w.sub.sent(&d)
			w.hw = max(w.hw, d.seq)
			w.setAnchor(d.seq, d.at)
			w.lastSend = time.Now()
		case <-ticker.C:
			if err := w.check(ctx, interval, true); err != nil {
				return err
			}
			if time.Since(w.lastSend) >= interval*9/10 {
				if err := w.heartbeat(); err != nil {
					return err
				}
			}
		}
	}
}

// heartbeat sends the furthest position that is safe to resume from: never
// past a matching event not yet sent, but past everything the subscription
// has skipped (filtered out) and, when the last check found it caught up,
// up to the end of the log. Advancing keeps a quiet subscriber's token from
// ageing out of retention while nothing it wants is happening.
func (w *watcher) heartbeat() error {
	passed, passedAt := w.sub.passed()
	pos := max(w.hw, passed)
	if w.advance > pos && passed >= w.advAfter {
		pos = w.advance
	}
	if err := w.send(Message{Token: w.id.token(w.filter, pos)}); err != nil {
		return err
	}
	w.hw = pos
	w.setAnchor(passed, passedAt) // passed <= pos
	w.lastSend = time.Now()
	return nil
}

// check asks JetStream where the log and the consumer stand, to end the
// subscription when events it should get were removed before it got them,
// and to find how far a heartbeat may advance. A failed check is skipped:
// the consumer recovers by itself and the next check will tell.
func (w *watcher) check(ctx context.Context, interval time.Duration, withConsumer bool) error {
	ctx, cancel := context.WithTimeout(ctx, min(max(interval/2, time.Second), 5*time.Second))
	defer cancel()
	seen := w.sub.seenSeq() // before the stream info: see the floor below
	info, err := w.log.streamInfo(ctx)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: the event log no longer exists", ErrUnavailable)
		}
		w.log.logger.Debug("events: watch check skipped", "err", err)
		return nil
	}
	if w.log.identity(info) != w.id {
		return fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired)
	}
	w.noteInfo(info)
	// Everything after floor was in the log at the previous check. If
	// retention has since removed some of it, the consumer may have skipped
	// events it had not reached yet: the subscriber can no longer be sure
	// to see every event, so it must re-read state.
	if info.State.FirstSeq > w.floor+1 {
		return fmt.Errorf("%w (the subscription fell behind)", ErrTokenExpired)
	}
	w.floor = max(w.floor, seen)
	if !withConsumer {
		return nil
	}
	ci, err := w.cons.Info(ctx)
	if err != nil || ci.NumPending != 0 || !sameServerView(info, ci) {
		return nil
	}
	// No matching event is pending after the stream's last sequence as read
	// above; if we also received everything the consumer delivered, every
	// matching event up to LastSeq has reached us.
	if last, ok := w.sub.receivedAll(ci); ok {
		w.floor = max(w.floor, info.State.LastSeq)
		w.advance, w.advAfter = info.State.LastSeq, last
	}
	return nil
}

// gapFree is called before the event d is sent. Its stream sequence S is
// normally not P+1, where P is the position the last token handed out
// stands for (the resume start - 1 before any): the filter skips other
// events. But the consumer also skips events that retention (MaxAge or
// MaxBytes) removed before it reached them, going on with the oldest one
// left; sending d with its token would then lose the removed events for
// good, also for whoever resumes from that token. So unless S = P+1,
// gapFree makes sure nothing between P+1 and S-1 was removed, and ends the
// subscription with ErrTokenExpired otherwise (d is never sent).
//
// Retention removes the oldest messages first, so nothing between P+1 and
// S-1 was removed iff the stream's FirstSeq is still at most P+1 once d was
// received: one stream info, which the first gap after the start or resume
// always costs. Later gaps skip it when retention evidently cannot have
// reached P+1:
//   - age: a received message at or before P+1 (the anchor) is younger than
//     MaxAge by more than a margin, and the messages after it are no older;
//   - size: the stream held less than half of MaxBytes at the last stream
//     info, still so when the messages appended since (as far as the
//     consumer tells: up to S and the matching ones pending after it) are
//     counted at the average message size.
//
// Residual assumption of that shortcut: between the last stream info (at
// most about a heartbeat interval old while the subscriber keeps up, see
// check) and the consumer reaching d, no more than about MaxBytes/2 was
// appended beyond the estimate (messages outside the filter after S), and
// JetStream's timestamps do not go back by more than the margin (e.g. a
// clock step on a leader change). Should it fail, the periodic check still
// ends the subscription once it sees FirstSeq past its floor, but tokens
// handed out before that could skip removed events.
func (w *watcher) gapFree(ctx context.Context, d *delivered, interval time.Duration) error {
	p := w.hw
	if d.seq == p+1 || w.verified && w.retentionFar(d, time.Now()) {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, min(max(interval/2, time.Second), 5*time.Second))
	defer cancel()
	info, err := w.log.streamInfo(cctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: the event log no longer exists", ErrUnavailable)
		}
		// Unverified, d must not be sent; the subscriber resumes from its
		// last token.
		return err
	}
	if w.log.identity(info) != w.id {
		return fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired)
	}
	w.noteInfo(info)
	if info.State.FirstSeq > p+1 {
		return fmt.Errorf("%w (events the subscription had not reached were removed)", ErrTokenExpired)
	}
	w.verified = true
	return nil
}

// retentionFar reports whether neither MaxAge nor MaxBytes can have
// removed the message after the last token's position; see gapFree.
func (w *watcher) retentionFar(d *delivered, now time.Time) bool {
	if w.maxAge > 0 {
		margin := max(time.Minute, w.maxAge/10)
		if w.anchorAt.IsZero() || now.Sub(w.anchorAt) >= w.maxAge-margin {
			return false
		}
	}
	if w.maxBytes > 0 {
		avg := uint64(d.size)
		if w.infoMsgs > 0 {
			avg = max(avg, w.infoBytes/w.infoMsgs)
		}
		last := max(d.seq+d.pending, w.infoLast)
		if w.infoBytes+(last-w.infoLast)*avg >= uint64(w.maxBytes)/2 {
			return false
		}
	}
	return true
}

// setAnchor records a received message at or before hw+1, for gapFree.
func (w *watcher) setAnchor(seq uint64, at time.Time) {
	if !at.IsZero() && seq >= w.anchorSeq {
		w.anchorSeq, w.anchorAt = seq, at
	}
}

// noteInfo keeps what gapFree needs from a stream info.
func (w *watcher) noteInfo(info *jetstream.StreamInfo) {
	w.maxAge, w.maxBytes = info.Config.MaxAge, info.Config.MaxBytes
	w.infoBytes, w.infoMsgs, w.infoLast = info.State.Bytes, info.State.Msgs, info.State.LastSeq
}

// sameServerView reports whether the consumer info ci can be compared with
// the stream info si. LastSeq comes from the stream's leader, NumPending and
// Delivered from the server running the consumer, which on a replicated
// stream may be a follower that has not stored the latest events yet: its
// "nothing pending" would then not cover LastSeq. Only when the consumer
// reports no cluster, or the same leader as the stream, do both describe
// the same copy of the stream; otherwise the heartbeat keeps the position it
// knows to be safe.
func sameServerView(si *jetstream.StreamInfo, ci *jetstream.ConsumerInfo) bool {
	if ci.Cluster == nil {
		return true
	}
	return si.Cluster != nil && ci.Cluster.Leader == si.Cluster.Leader
}

func (w *watcher) stop(cc jetstream.ConsumeContext) {
	w.sub.close()
	cc.Stop()
	if info := w.cons.CachedInfo(); info != nil {
		w.log.deleteConsumer(info.Name)
	}
}

// isConnClosed reports errors after which the consumer will not recover.
func isConnClosed(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed)
}
