package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// fanout is the log's one reader of the live stream: a single ordered
// JetStream consumer per gateway replica (the tail), started by the first
// Watch, whose messages are handed in memory to the subscribers whose
// filter selects them. Subscribers are indexed by account group and family,
// so an event costs work only for those that want it, and it is decoded
// once, only when someone does. The tail never waits for a subscriber (see
// subscriber.push).
//
// The tail reads every message of the stream in order, so it knows exactly
// how far it has got: that position is what a quiet subscriber's heartbeat
// advances to, with no JetStream call per subscriber. And it sees every
// sequence number, so a message that retention removed before the tail read
// it shows as a jump: every subscriber on the tail might have wanted it and
// is ended with ErrTokenExpired.
type fanout struct {
	log *Log

	// tail is the stream sequence of the last message handed out: every
	// subscriber on the tail has been given every matching entry up to it.
	// Written under mu, read without it by heartbeats.
	tail atomic.Uint64

	mu         sync.Mutex
	running    bool
	generation uint64 // of the current consumer; a stopped one's late messages are ignored
	id         streamIdentity
	consumer   jetstream.Consumer
	consume    jetstream.ConsumeContext
	cancelTail context.CancelFunc // of a sync the tail waits for
	stopChecks chan struct{}
	// index finds the subscribers an entry may be for; the value is true
	// when every entry under the key is (no status to check).
	index       map[indexKey]map[*subscriber]bool
	subscribers int // on the tail
	// recent holds the last entries the tail read, by sequence modulo its
	// length (all of them, also those no one wanted, decoded only when
	// someone does): a subscriber a little behind catches up from here, in
	// memory, rather than from the log.
	recent []*entry

	handedOut atomic.Uint64 // entries queued for subscribers, ever
	overflows atomic.Uint64 // times a full queue took a subscriber off the tail
}

// durableWait is how long the tail waits for an Append's sync to make a
// message durable before it syncs itself: a few fsyncs.
const durableWait = 20 * time.Millisecond

// checkInterval is how often the tail compares the stream's identity with
// its own (a deleted or re-created stream ends the subscriptions).
const checkInterval = DefaultHeartbeat

func newFanout(l *Log, recent int) *fanout {
	return &fanout{log: l, index: map[indexKey]map[*subscriber]bool{}, recent: make([]*entry, recent)}
}

// start starts the tail unless it runs, and returns the identity of the
// stream it reads.
func (f *fanout) start(ctx context.Context) (streamIdentity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		return f.id, nil
	}
	info, err := f.log.streamInfo(ctx)
	if err != nil {
		return streamIdentity{}, err
	}
	f.generation++
	gen := f.generation
	cons, err := f.log.js.OrderedConsumer(ctx, f.log.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   info.State.LastSeq + 1,
		// Backstop for the consumer of a process that died; Close deletes it.
		InactiveThreshold: time.Minute,
		NamePrefix:        nuid.Next(),
	})
	if err != nil {
		if f.log.isClosed() {
			return streamIdentity{}, ErrClosed
		}
		err = fmt.Errorf("%w: creating the consumer that tails the log: %w", ErrUnavailable, err)
		f.log.logger.Warn("events: cannot tail the event log", "stream", f.log.cfg.Stream, "err", err)
		return streamIdentity{}, err
	}
	tailCtx, cancel := context.WithCancel(context.Background())
	cc, err := cons.Consume(func(msg jetstream.Msg) { f.handle(tailCtx, gen, msg) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { f.consumeError(gen, err) }),
		jetstream.PullMaxMessages(512),
	)
	if err != nil {
		cancel()
		f.log.deleteConsumer(consumerName(cons))
		err = fmt.Errorf("%w: tailing the log: %w", ErrUnavailable, err)
		f.log.logger.Warn("events: cannot tail the event log", "stream", f.log.cfg.Stream, "err", err)
		return streamIdentity{}, err
	}
	f.running, f.id, f.consumer, f.consume, f.cancelTail = true, f.log.identity(info), cons, cc, cancel
	f.tail.Store(info.State.LastSeq)
	clear(f.recent)
	f.stopChecks = make(chan struct{})
	go f.checks(gen, f.stopChecks)
	f.log.logger.Debug("events: tailing the event log", "stream", f.log.cfg.Stream, "from", info.State.LastSeq+1)
	return f.id, nil
}

// follow makes sure the tail reads the stream instance info describes (a
// resuming subscriber has just read it): a tail still on a stream that was
// deleted and re-created is stopped, ending its subscribers, and a new one
// started.
func (f *fanout) follow(ctx context.Context, info *jetstream.StreamInfo) error {
	id := f.log.identity(info)
	f.mu.Lock()
	if f.running && f.id != id {
		f.stopLocked(fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired))
	}
	f.mu.Unlock()
	current, err := f.start(ctx)
	if err != nil {
		return err
	}
	if current != id {
		return fmt.Errorf("%w: the event log changed while the subscription started", ErrUnavailable)
	}
	return nil
}

func consumerName(c jetstream.Consumer) string {
	if info := c.CachedInfo(); info != nil {
		return info.Name
	}
	return ""
}

// handle is the tail consumer's callback: the ordered consumer calls it in
// stream order, once per message, across its own re-creations.
func (f *fanout) handle(ctx context.Context, gen uint64, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		f.log.logger.Warn("events: message without metadata on the tail", "err", err)
		return
	}
	e := newEntry(f.log.cfg.Subject, msg, md)
	now := time.Now()
	// With group commit a message is readable once written, before it is
	// synced: hand on nothing a power loss could still take back. The
	// Append that wrote it is normally syncing right now; if it does not
	// mark it durable soon (say it failed), one sync of our own covers
	// every message read before it started.
	if !f.log.broker.DurableAt(now) && !f.log.durable.wait(ctx, e.seq, durableWait) {
		if err := f.log.broker.Sync(ctx); err != nil {
			f.mu.Lock()
			defer f.mu.Unlock()
			if gen == f.generation && ctx.Err() == nil {
				f.log.logger.Error("events: the event log cannot be synced to disk; ending every subscription", "err", err)
				f.stopLocked(fmt.Errorf("%w: %w", ErrUnavailable, err))
			}
			return
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.tail.Load()
	if gen != f.generation || !f.running || e.seq <= last {
		return // a stopped consumer's, or a redelivery: never hand out an entry twice
	}
	if e.seq != last+1 {
		// Retention removed messages before the tail read them.
		f.endAllLocked(fmt.Errorf("%w (the gateway fell behind the event log's retention)", ErrTokenExpired))
	}
	if e.isEvent && f.subscribers > 0 {
		f.dispatchLocked(e, now)
	}
	if len(f.recent) > 0 {
		f.recent[e.seq%uint64(len(f.recent))] = e
	}
	f.tail.Store(e.seq)
}

// dispatchLocked hands e to every subscriber on the tail whose filter
// selects it.
func (f *fanout) dispatchLocked(e *entry, now time.Time) {
	for _, key := range [...]indexKey{
		{e.accountGroup, e.family}, {e.accountGroup, "*"}, {"*", e.family}, {"*", "*"},
	} {
		for s, all := range f.index[key] {
			if !all && !s.sel.matches(e) {
				continue
			}
			if _, err := e.decoded(); err != nil {
				f.log.logger.Warn("events: skipping undecodable message", "seq", e.seq, "err", err)
				return
			}
			queued, keep := s.push(e, now)
			if queued {
				f.handedOut.Add(1)
			}
			if !keep {
				f.overflows.Add(1)
				f.removeLocked(s)
			}
		}
	}
}

// register puts s on the tail: from now on it gets every matching entry
// after the returned position (the tail's), and none at or before from.
func (f *fanout) register(ctx context.Context, s *subscriber, id streamIdentity, from uint64) (uint64, error) {
	current, err := f.start(ctx)
	if err != nil {
		return 0, err
	}
	if current != id {
		return 0, fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usableLocked(id); err != nil {
		return 0, err
	}
	f.registerLocked(s, from)
	return f.tail.Load(), nil
}

// usableLocked reports why a subscriber of stream instance id cannot be on
// the tail now, if it cannot.
func (f *fanout) usableLocked(id streamIdentity) error {
	switch {
	case !f.running:
		return fmt.Errorf("%w: the log's tail stopped", ErrUnavailable)
	case f.id != id:
		return fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired)
	}
	return nil
}

func (f *fanout) registerLocked(s *subscriber, from uint64) {
	s.mu.Lock()
	already := s.registered
	s.registered, s.overflow, s.behindSince = true, false, time.Time{}
	s.floor = max(s.floor, from)
	s.mu.Unlock()
	if already {
		return
	}
	for _, k := range s.sel.indexKeys() {
		set := f.index[k]
		if set == nil {
			set = map[*subscriber]bool{}
			f.index[k] = set
		}
		set[s] = s.sel.takesAll(k)
	}
	f.subscribers++
}

// recentAfter is the catch-up from memory: it returns, into buf, the
// entries the tail read after position from that are still in recent (as
// many as fit), all of them, with no gap. When from is the tail's position
// it puts s on the tail instead (joined); when the entry after from has
// left recent, the catch-up must read the log (gone).
func (f *fanout) recentAfter(s *subscriber, id streamIdentity, from uint64, buf []*entry) (entries []*entry, joined, gone bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usableLocked(id); err != nil {
		return nil, false, false, err
	}
	tail := f.tail.Load()
	if from >= tail {
		f.registerLocked(s, from)
		return nil, true, false, nil
	}
	if len(f.recent) == 0 {
		return nil, false, true, nil
	}
	for seq := from + 1; seq <= tail && len(buf) < cap(buf); seq++ {
		e := f.recent[seq%uint64(len(f.recent))]
		if e == nil || e.seq != seq {
			if len(buf) > 0 {
				return buf, false, false, nil
			}
			return nil, false, true, nil
		}
		buf = append(buf, e)
	}
	return buf, false, false, nil
}

// remove takes s off the tail, if it is on it.
func (f *fanout) remove(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeLocked(s)
}

func (f *fanout) removeLocked(s *subscriber) {
	removed := false
	for _, k := range s.sel.indexKeys() {
		if set, ok := f.index[k]; ok {
			if _, on := set[s]; on {
				removed = true
				delete(set, s)
				if len(set) == 0 {
					delete(f.index, k)
				}
			}
		}
	}
	if removed {
		f.subscribers--
	}
	s.mu.Lock()
	s.registered = false
	s.mu.Unlock()
}

// endAllLocked ends every subscriber on the tail with err.
func (f *fanout) endAllLocked(err error) {
	for _, set := range f.index {
		for s := range set {
			s.end(err)
		}
	}
	clear(f.index)
	f.subscribers = 0
	// A gap: what the tail holds no longer leads up to its position.
	clear(f.recent)
}

// stopLocked stops the tail (the next Watch starts another one) and ends
// the subscribers on it with err.
func (f *fanout) stopLocked(err error) {
	if !f.running {
		return
	}
	f.running = false
	f.generation++
	clear(f.recent)
	f.cancelTail()
	close(f.stopChecks)
	// Not under mu: the client library holds a lock of its own while it
	// calls consumeError and while it re-creates the consumer (retrying as
	// long as the stream is gone), and Stop and CachedInfo take it.
	cc, cons := f.consume, f.consumer
	go func() {
		cc.Stop()
		f.log.deleteConsumer(consumerName(cons))
	}()
	f.endAllLocked(err)
}

// stop stops the tail when the log closes.
func (f *fanout) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopLocked(ErrClosed)
}

// consumeError gets the tail consumer's errors. It recovers from most
// (missed heartbeats, reconnects) by itself, but not from a closed
// connection. The client library calls it holding a lock of its own, so
// stopping is left to another goroutine.
func (f *fanout) consumeError(gen uint64, err error) {
	if !isConnClosed(err) {
		f.log.logger.Debug("events: tail consumer", "err", err)
		return
	}
	go f.connectionClosed(gen, err)
}

func (f *fanout) connectionClosed(gen uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.generation {
		return
	}
	if f.log.isClosed() {
		f.stopLocked(ErrClosed)
		return
	}
	f.stopLocked(fmt.Errorf("%w: %w", ErrUnavailable, err))
}

// checks compares, every checkInterval, the stream's identity with the
// tail's: a stream that was deleted, or deleted and re-created, ends every
// subscription (the positions they hold refer to events that are gone).
// A check that fails to reach NATS is skipped: the consumer recovers by
// itself, and the next check will tell.
func (f *fanout) checks(gen uint64, stop <-chan struct{}) {
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := f.log.streamInfo(ctx)
		cancel()
		f.mu.Lock()
		switch {
		case gen != f.generation:
		case errors.Is(err, jetstream.ErrStreamNotFound):
			f.stopLocked(fmt.Errorf("%w: the event log no longer exists", ErrUnavailable))
		case err != nil:
			f.log.logger.Debug("events: tail check skipped", "err", err)
		case f.log.identity(info) != f.id:
			f.stopLocked(fmt.Errorf("%w (the event log was re-created)", ErrTokenExpired))
		}
		f.mu.Unlock()
	}
}

// position is the tail's position, for heartbeats.
func (f *fanout) position() uint64 { return f.tail.Load() }

// onTail is how many subscribers the tail hands entries to.
func (f *fanout) onTail() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subscribers
}
