package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	// ErrSlowSubscriber: the subscriber's buffer was full, and then it
	// completed no send for the stall timeout. RESOURCE_EXHAUSTED; it may
	// resume from its last token.
	ErrSlowSubscriber = errors.New("events: subscriber too slow, its buffer stayed full; resume from the last token")
)

// Defaults of the watch options.
const (
	DefaultHeartbeat = 15 * time.Second
	DefaultBuffer    = 256
	// DefaultStallTimeout is how long a subscriber whose buffer was full may
	// take for one send. A client that reads at all completes one much
	// sooner; one that stopped reading (or whose connection is dead) is cut
	// loose.
	DefaultStallTimeout = 10 * time.Second
)

// Message is what a subscriber receives: an event, or a heartbeat (Event
// nil). Token resumes exactly after this message. The Event is shared with
// every other subscriber of it: read-only.
type Message struct {
	Token string
	Event *Event
	// Stored is when the log stored the event (JetStream's timestamp), so
	// a subscriber's lag behind the log can be measured; zero for a
	// heartbeat.
	Stored time.Time
	entry  *entry // shared by every subscriber the event goes to; nil for a heartbeat
	filter uint32 // the subscriber's filter, which decides Token
}

// Memo returns build's result for key, building it once for every
// subscriber that receives this same event with the same filter (hence the
// same token) and asks with the same key: e.g. an RPC's encoded response,
// keyed by the RPC and its wire format, so that a thousand subscribers of
// an event cost one encoding. The result is shared: treat it as read-only.
// For a heartbeat, build simply runs.
func (m Message) Memo(key string, build func() (any, error)) (any, error) {
	if m.entry == nil {
		return build()
	}
	return m.entry.memoise(memoKey{key, m.filter}, build)
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

// WithHeartbeat sets how often a quiet subscriber gets a heartbeat (default
// 15 s): one every interval while nothing else is sent, at a point of the
// interval chosen at random for each subscription.
func WithHeartbeat(d time.Duration) WatchOption {
	return optionFunc(func(o *watchOptions) {
		if d > 0 {
			o.heartbeat = d
		}
	})
}

// WithBuffer sets how many events may wait for send (default 256). The
// buffer is allocated as events arrive and released once they are sent, so
// an idle subscriber holds none.
func WithBuffer(n int) WatchOption {
	return optionFunc(func(o *watchOptions) {
		if n > 0 {
			o.buffer = n
		}
	})
}

// WithStallTimeout sets how long a subscriber whose buffer was full may
// take to complete a send before it is ended with ErrSlowSubscriber
// (default 10 s). While it keeps sending it is paced, not ended: what did
// not fit in the buffer is read from the log when it gets there.
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
// first message is a heartbeat, so that a subscriber holds a token before
// any event arrives; further heartbeats follow whenever nothing was sent for
// the heartbeat interval, each with the furthest token that is safe.
//
// Subscribers do not read the log themselves: the log's tail (one consumer
// for all of them) hands them what their filter selects, into a bounded
// buffer. A subscriber that resumes from an older token, or whose buffer
// the tail found full, first catches up with a consumer of its own, as fast
// as it sends (at most WithCatchUps of them at once), then joins the tail
// again with no gap and no repeat. When the buffer was full and a send then
// takes longer than the stall timeout, the subscriber is ended with
// ErrSlowSubscriber as soon as that send returns. None of this ever holds up
// Append, the tail or other subscribers.
func (l *Log) Watch(ctx context.Context, f Filter, resumeToken string, send func(Message) error, opts ...WatchOption) error {
	w := &watcher{log: l, send: send}
	err := w.start(ctx, f, resumeToken, opts)
	if err == nil {
		// Here, not under start's frame: the goroutine of an idle stream
		// waits in run, and its stack stays at 8 kB only while run and the
		// sends under it stay within it (10,000 streams, 80 MB more at
		// 16 kB).
		err = w.follow(ctx, resumeToken != "")
	}
	w.stop()
	// Close closes the NATS connection too, so a subscription may see the
	// connection fail before it sees the log closed: that is a close.
	if errors.Is(err, ErrUnavailable) && l.isClosed() {
		err = ErrClosed
	}
	if !w.started && err != nil && ctx.Err() == nil {
		level := startFailureLevel(err)
		l.logger.Log(ctx, level, "events: a subscription could not start", "reason", err, "resuming", resumeToken != "")
	}
	return err
}

// watcher is one Watch: it sends what the tail or a catch-up hands it, and
// heartbeats.
type watcher struct {
	log  *Log
	id   streamIdentity
	sel  *selection
	sub  *subscriber
	send func(Message) error
	opts watchOptions

	// passed is the position every matching event up to which has been
	// handed to send; the last token handed out is never past it, and it
	// only grows.
	passed   uint64
	lastSend time.Time // of the last message or heartbeat (of a queue sent, once at its end)
	started  bool      // the first heartbeat went out
	// The heartbeat timer, the caller's context ending and the log closing
	// all wake the subscriber, so that a waiting Watch waits on one channel
	// (a select on four was an eighth of the gateway's CPU with 1,000
	// unfiltered subscribers); unwake stops the last two.
	timer  *time.Timer
	unwake [2]func() bool
}

// start checks the filter and the token and registers the subscriber with
// the tail, from its position or from the token's.
func (w *watcher) start(ctx context.Context, f Filter, resumeToken string, opts []WatchOption) error {
	l := w.log
	w.opts = watchOptions{heartbeat: DefaultHeartbeat, buffer: DefaultBuffer, stall: DefaultStallTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt.applyWatch(&w.opts)
		}
	}
	var err error
	if w.sel, err = f.selection(l.cfg.Subject); err != nil {
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
	w.sub = newSubscriber(w.sel, w.opts.buffer)
	// The first tick comes at a random point of the first interval, so that
	// the heartbeats of streams opened together (a restart, a fleet of
	// clients reconnecting) do not all fall due at once, every interval.
	w.timer = time.AfterFunc(time.Duration(rand.Int64N(int64(w.opts.heartbeat)))+1, w.sub.tick)
	w.unwake = [2]func() bool{context.AfterFunc(ctx, w.sub.notify), context.AfterFunc(l.closed, w.sub.notify)}

	if resumeToken == "" {
		// From the tail's position: no JetStream call at all.
		if w.id, err = l.fanout.start(ctx); err != nil {
			return cmp.Or(ctx.Err(), err)
		}
		if w.passed, err = l.fanout.register(ctx, w.sub, w.id, 0); err != nil {
			return cmp.Or(ctx.Err(), err)
		}
		return nil
	}

	info, err := l.streamInfo(ctx)
	if err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	w.id = l.identity(info)
	if err := checkPosition(tok, w.id, info.State); err != nil {
		return err
	}
	// After the checks above, so that an expired token is expired whatever
	// the filter.
	if tok.filter != w.sel.hash {
		return fmt.Errorf("%w: it was issued for another filter", ErrBadToken)
	}
	if err := l.fanout.follow(ctx, info); err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	w.passed = tok.seq
	return nil
}

// follow sends the first heartbeat, catches up from the token when
// resuming, then runs.
func (w *watcher) follow(ctx context.Context, resuming bool) error {
	if err := w.heartbeat(!resuming); err != nil {
		return err
	}
	if resuming {
		if err := w.catchUp(ctx); err != nil {
			return err
		}
	}
	return w.run(ctx)
}

// stop unregisters the subscriber and stops its heartbeats.
func (w *watcher) stop() {
	if w.sub != nil {
		w.log.fanout.remove(w.sub)
	}
	if w.timer != nil {
		w.timer.Stop()
		for _, stop := range w.unwake {
			stop()
		}
	}
}

// startFailureLevel is how loud a failed start is logged: a log that cannot
// be reached is the operator's business; a bad or expired token is the
// caller's, and a closing log is expected.
func startFailureLevel(err error) slog.Level {
	if errors.Is(err, ErrUnavailable) {
		return slog.LevelWarn
	}
	return slog.LevelInfo
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

// run sends what the tail hands over, catching up (from memory, else from
// the log) whenever the tail had to let go of the subscriber.
func (w *watcher) run(ctx context.Context) error {
	for {
		if through, ok := w.sub.overflowed(); ok {
			// Everything matching up to through was queued, and is sent.
			w.passed = max(w.passed, through)
			if err := w.catchUp(ctx); err != nil {
				return err
			}
			continue
		}
		<-w.sub.wake
		if err := w.ended(ctx); err != nil {
			return err
		}
		if err := w.drain(ctx); err != nil {
			return err
		}
		if w.heartbeatDue() {
			w.sub.release()
			if err := w.heartbeatIfIdle(true); err != nil {
				return err
			}
			if w.sub.sent(w.opts.stall) {
				return ErrSlowSubscriber
			}
		}
	}
}

// ended is why the Watch must end, if it must: its context is done, or the
// log closed.
func (w *watcher) ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.log.closed.Err() != nil {
		return ErrClosed
	}
	return nil
}

// heartbeatDue reports whether the heartbeat timer has fired since it was
// last asked, and sets it for the next interval if so.
func (w *watcher) heartbeatDue() bool {
	if !w.sub.ticked() {
		return false
	}
	w.timer.Reset(w.opts.heartbeat)
	return true
}

// drain sends the queued entries.
func (w *watcher) drain(ctx context.Context) error {
	for n := 1; ; n++ {
		e, err := w.sub.take()
		switch {
		case err != nil:
			return err
		case e == nil:
			if n > 1 {
				// Once for the whole queue: nothing reads it until the
				// queue is sent.
				w.lastSend = time.Now()
			}
			return nil
		}
		if err := w.sendEvent(e); err != nil {
			return err
		}
		if w.sub.sent(w.opts.stall) {
			return ErrSlowSubscriber
		}
		// A long queue is not sent past the end of the subscription.
		if n%drainCheck == 0 {
			if err := w.ended(ctx); err != nil {
				return err
			}
		}
	}
}

// drainCheck is how many entries drain sends between checks that the
// subscription still goes on.
const drainCheck = 16

// sendEvent sends a decoded entry.
func (w *watcher) sendEvent(e *entry) error {
	if err := w.send(Message{Token: e.token(w.id, w.sel.hash), Event: &e.event, Stored: e.at, entry: e, filter: w.sel.hash}); err != nil {
		return err
	}
	w.passed = e.seq
	return nil
}

func (w *watcher) heartbeatIfIdle(live bool) error {
	if time.Since(w.lastSend) < w.opts.heartbeat/2 {
		return nil
	}
	return w.heartbeat(live)
}

// heartbeat sends the furthest position that is safe to resume from: never
// past a matching event not yet sent, but, for a subscriber on the tail
// with nothing queued, as far as the tail has got (past every event the
// filter skips). That keeps a quiet subscriber's token from ageing out of
// retention while nothing it wants is happening, and costs no JetStream
// call. While catching up it is the last position sent.
func (w *watcher) heartbeat(live bool) error {
	pos := w.passed
	if live {
		// The tail's position first: whatever it has handed over since is
		// then in the queue, and the queue is not empty.
		tail := w.log.fanout.position()
		if p, ok := w.sub.livePosition(tail); ok {
			pos = max(pos, p)
		}
	}
	if err := w.send(Message{Token: w.id.token(w.sel.hash, pos)}); err != nil {
		return err
	}
	w.passed, w.lastSend, w.started = pos, time.Now(), true
	return nil
}

// catchUp brings the subscriber from its position to the tail: from the
// recent entries the tail keeps in memory when its position is among them,
// else from the log.
func (w *watcher) catchUp(ctx context.Context) error {
	// Sends that stall while catching up are the subscriber's as much as
	// on the tail (see subscriber.sent).
	w.sub.markBehind(time.Now())
	joined, err := w.catchUpFromMemory(ctx)
	if err != nil || joined {
		w.sub.notify() // for what the tail queued meanwhile
		return err
	}
	return w.catchUpFromLog(ctx)
}

// recentBatch is how many recent entries a catch-up from memory takes at a
// time, so that it holds the tail's lock only briefly.
const recentBatch = 64

// catchUpFromMemory walks the tail's recent entries from the subscriber's
// position until it reaches the tail and joins it (joined), or finds the
// next entry gone from memory. They follow one another without a gap (the
// tail read them all, in order), so every one of them, matching or not,
// moves the position on.
func (w *watcher) catchUpFromMemory(ctx context.Context) (joined bool, err error) {
	buf := make([]*entry, 0, recentBatch)
	for {
		entries, joined, gone, err := w.log.fanout.recentAfter(w.sub, w.id, w.passed, buf[:0])
		if err != nil || joined || gone {
			return joined, err
		}
		for _, e := range entries {
			if e.isEvent && w.sel.matches(e) {
				if _, err := e.decoded(); err == nil {
					if err := w.sendEvent(e); err != nil {
						return false, err
					}
					w.lastSend = time.Now()
					if w.sub.sent(w.opts.stall) {
						return false, ErrSlowSubscriber
					}
				}
			}
			w.passed = max(w.passed, e.seq)
		}
		if err := w.ended(ctx); err != nil {
			return false, err
		}
		if w.heartbeatDue() {
			if err := w.heartbeatIfIdle(false); err != nil {
				return false, err
			}
		}
	}
}

// catchUpFromLog joins the tail first, which fixes the position the tail
// hands entries on from; then, if that is past the subscriber's own, it
// reads the events in between from the log with a consumer of its own, at
// most WithCatchUps catch-ups at a time.
func (w *watcher) catchUpFromLog(ctx context.Context) error {
	if err := w.catchUpSlot(ctx); err != nil {
		return err
	}
	defer func() { <-w.log.catchUps }()
	joined, err := w.log.fanout.register(ctx, w.sub, w.id, w.passed)
	if err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	if joined <= w.passed {
		return nil // the tail is not past the subscriber: nothing to read
	}
	r, err := w.log.startReplay(ctx, w.sel, w.passed, min(w.opts.buffer, maxReplayBuffer), w.opts.stall)
	if err != nil {
		return cmp.Or(ctx.Err(), err)
	}
	defer r.stop()

	// verified: every event the consumer delivered up to here was checked
	// against retention (see verify).
	var verified uint64
	caughtUp := r.pendingAtStart == 0
	for !caughtUp {
		select {
		case <-r.slow:
			return ErrSlowSubscriber
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.log.closed.Done():
			return ErrClosed
		case <-r.slow:
			return ErrSlowSubscriber
		case err := <-r.fatal:
			return err
		case <-w.sub.wake:
			// The tail queues what comes after joined meanwhile (run sends
			// it); it may also have ended the subscription, or a heartbeat
			// may be due.
			if err := w.sub.err(); err != nil {
				return err
			}
			if w.heartbeatDue() {
				if err := w.heartbeatIfIdle(false); err != nil {
					return err
				}
			}
		case d := <-r.buf:
			if d.e.seq > joined {
				caughtUp = true // the tail has this one and what follows
				break
			}
			if d.matches {
				if d.e.seq != w.passed+1 && d.e.seq > verified {
					received := r.receivedSeq()
					if err := w.verify(ctx); err != nil {
						return err
					}
					verified = received
				}
				if err := w.sendEvent(d.e); err != nil {
					return err
				}
				w.lastSend = time.Now()
				// The replay has a stall timeout of its own; this keeps the
				// clock of an overflow of the tail's queue meanwhile honest.
				if w.sub.sent(w.opts.stall) {
					return ErrSlowSubscriber
				}
			}
			caughtUp = d.pending == 0
		}
	}
	// Nothing matching is left between the last event sent and joined,
	// unless retention removed it before the consumer got there.
	if verified < joined {
		if err := w.verify(ctx); err != nil {
			return err
		}
	}
	w.passed = max(w.passed, joined)
	w.sub.notify() // for what the tail queued meanwhile
	return nil
}

// maxReplayBuffer bounds a catch-up's buffer: it only needs to keep the
// consumer busy while the subscriber sends.
const maxReplayBuffer = 64

// catchUpSlot waits for one of the log's catch-up slots, sending
// heartbeats meanwhile.
func (w *watcher) catchUpSlot(ctx context.Context) error {
	for {
		select {
		case w.log.catchUps <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-w.log.closed.Done():
			return ErrClosed
		case <-w.sub.wake:
			if w.heartbeatDue() {
				if err := w.heartbeatIfIdle(false); err != nil {
					return err
				}
			}
		}
	}
}

// verify makes sure that retention has removed nothing after passed (the
// position of the last token handed out, or of everything sent). A
// catch-up's consumer skips the events of other filters, so the sequence of
// the next event it delivers is normally not passed+1; but it also skips
// events that retention (MaxAge, MaxBytes) removed before it reached them,
// going on with the oldest left. Sending the next event with its token
// would lose the removed ones for good, also for whoever resumes from that
// token. Retention removes the oldest messages first, so nothing after
// passed was removed iff the stream's FirstSeq is at most passed+1: one
// stream info, which also covers every event the consumer delivered before
// it (the caller keeps track of that).
func (w *watcher) verify(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, min(max(w.opts.heartbeat/2, time.Second), 5*time.Second))
	defer cancel()
	info, err := w.log.streamInfo(cctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: the event log no longer exists", ErrUnavailable)
		}
		// Unverified, nothing more can be sent; the subscriber resumes from
		// its last token.
		return err
	}
	if w.log.identity(info) != w.id {
		return fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired)
	}
	if info.State.FirstSeq > w.passed+1 {
		return fmt.Errorf("%w (events the subscription had not reached were removed)", ErrTokenExpired)
	}
	return nil
}

// isConnClosed reports errors after which a consumer will not recover.
func isConnClosed(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed)
}
