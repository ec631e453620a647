package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// DefaultCatchUps is how many subscribers may read from the log at once
// (see WithCatchUps).
const DefaultCatchUps = 16

// replay is a catch-up's reading of the log: an ordered consumer of its
// own, with the subscriber's filter (on NATS < 2.10 one subject covering it,
// the exact filter applied here), from after the subscriber's position. Its
// callback puts what it reads into a small buffer and waits while the
// buffer is full, which stops the consumer from pulling more: the catch-up
// goes as fast as the subscriber reads, and JetStream keeps the rest. If
// the buffer stays full for the stall timeout the subscriber is too slow.
// Only this consumer waits: not the tail, not Append, not other subscribers.
type replay struct {
	log     *Log
	sel     *selection
	stall   time.Duration
	buf     chan replayed
	slow    chan struct{} // closed when the subscriber stalled
	stopped chan struct{} // closed by stop
	fatal   chan error    // the consumer cannot continue

	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
	// pendingAtStart is how many messages the consumer had to deliver when
	// it was created: none means nothing after the start matched then.
	pendingAtStart uint64

	mu       sync.Mutex
	done     bool
	received uint64 // stream sequence of the last message received
}

// replayed is a message a catch-up read.
type replayed struct {
	e       *entry
	pending uint64 // messages after it that the consumer still had to deliver
	matches bool   // selected by the exact filter, and decoded
}

// startReplay starts reading the log for sel after the stream sequence
// from, with a buffer of size entries.
func (l *Log) startReplay(ctx context.Context, sel *selection, from uint64, size int, stall time.Duration) (*replay, error) {
	r := &replay{
		log:      l,
		sel:      sel,
		stall:    stall,
		buf:      make(chan replayed, size),
		slow:     make(chan struct{}),
		stopped:  make(chan struct{}),
		fatal:    make(chan error, 1),
		received: from, // nothing up to here is for the subscriber
	}
	if err := l.consume(ctx, r, from+1); err != nil {
		return nil, err
	}
	return r, nil
}

// consume starts an ordered consumer (ephemeral, in order, recreated by the
// client library after a gap or reconnect from the last message received)
// at sequence start.
func (l *Log) consume(ctx context.Context, r *replay, start uint64) error {
	subjects := r.sel.subjects
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
		// Backstop for consumers of a process that died; a catch-up deletes
		// its own when it ends.
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
		// filter on one subject covering all of them; the catch-up applies
		// the exact filter.
		l.multiFilter.Store(multiFilterNo)
		l.deleteConsumer(cfg.NamePrefix + "_1")
		l.logger.Info("events: NATS server takes one filter subject per consumer; filtering the rest in the gateway")
		cfg.FilterSubjects = []string{widen(subjects)}
		cfg.NamePrefix = nuid.Next()
		cons, err = l.js.OrderedConsumer(ctx, l.cfg.Stream, cfg)
	}
	if err != nil {
		if l.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("%w: creating a consumer to catch up from the log: %w", ErrUnavailable, err)
	}
	if len(cfg.FilterSubjects) > 1 {
		l.multiFilter.Store(multiFilterYes)
	}
	r.cons = cons
	// Read before consuming, so that it is the first consumer's, created
	// after the subscriber joined the tail: a consumer the client library
	// re-creates later starts after what was delivered, and its count says
	// nothing about messages on their way to handle.
	r.pendingAtStart = 1 // unknown: wait for what it delivers
	if info := cons.CachedInfo(); info != nil {
		r.pendingAtStart = info.NumPending
	}
	cc, err := cons.Consume(r.handle,
		jetstream.ConsumeErrHandler(r.consumeError),
		jetstream.PullMaxMessages(max(cap(r.buf), 16)),
	)
	if err != nil {
		l.deleteConsumer(consumerName(cons))
		return fmt.Errorf("%w: catching up from the log: %w", ErrUnavailable, err)
	}
	r.cc = cc
	return nil
}

const (
	multiFilterUnknown = iota
	multiFilterYes
	multiFilterNo
)

// handle is the consumer callback. The ordered consumer calls it in stream
// order, once per message, across its own re-creations.
func (r *replay) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.fail(fmt.Errorf("%w: message without metadata: %w", ErrUnavailable, err))
		return
	}
	r.mu.Lock()
	if r.done || md.Sequence.Stream <= r.received {
		r.mu.Unlock()
		return // ended, or a redelivery: never send an event twice
	}
	r.received = md.Sequence.Stream
	r.mu.Unlock()

	e := newEntry(r.log.cfg.Subject, msg, md)
	d := replayed{e: e, pending: md.NumPending, matches: e.isEvent && r.sel.matches(e)}
	if d.matches {
		if _, err := e.decoded(); err != nil {
			r.log.logger.Warn("events: skipping undecodable message", "seq", e.seq, "err", err)
			d.matches = false
		}
	}
	select {
	case r.buf <- d:
		return
	default:
	}
	t := time.NewTimer(r.stall)
	defer t.Stop()
	select {
	case r.buf <- d:
	case <-r.stopped:
	case <-t.C:
		r.mu.Lock()
		first := !r.done
		r.done = true
		r.mu.Unlock()
		if first {
			close(r.slow)
			// The catch-up is over, but its Watch returns only once the
			// subscriber's send does: stop pulling messages meanwhile, they
			// would only be discarded.
			go r.cc.Stop()
		}
	}
}

// consumeError gets the consumer's errors; it recovers from most (missed
// heartbeats, reconnects) by itself, but not from a closed connection.
func (r *replay) consumeError(_ jetstream.ConsumeContext, err error) {
	if isConnClosed(err) {
		r.fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
}

func (r *replay) fail(err error) {
	select {
	case r.fatal <- err:
	default:
	}
}

// receivedSeq is the stream sequence of the last message received.
func (r *replay) receivedSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

// stop ends the catch-up and deletes its consumer.
func (r *replay) stop() {
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
	select {
	case <-r.stopped:
		return
	default:
		close(r.stopped)
	}
	r.cc.Stop()
	r.log.deleteConsumer(consumerName(r.cons))
}

// deleteConsumer removes a consumer the gateway no longer needs rather than
// leaving it to the inactivity threshold. Best effort.
func (l *Log) deleteConsumer(name string) {
	if name == "" || l.isClosed() || !l.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.js.DeleteConsumer(ctx, l.cfg.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		l.logger.Debug("events: deleting consumer", "consumer", name, "err", err)
	}
}
