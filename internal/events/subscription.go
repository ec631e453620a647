package events

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// delivered is an event on its way from NATS to the subscriber.
type delivered struct {
	seq     uint64
	at      time.Time // JetStream's timestamp of the message
	pending uint64    // matching messages after it, as the consumer saw them
	size    int       // about what the message takes in the stream
	event   Event
}

// subscription is the NATS side of one Watch. The consumer's callback puts
// matching events into a bounded buffer. While the buffer is full the
// callback waits, which stops this consumer from pulling more (JetStream
// keeps the backlog, so a subscriber replaying history or riding out a burst
// is paced, not dropped); if the buffer stays full for the stall timeout,
// the subscriber is too slow and the subscription ends. Either way only this
// subscription's own consumer waits: not Append, not other subscribers.
type subscription struct {
	log      *Log
	subjects []string // the exact filter, applied here as well
	stall    time.Duration
	buf      chan delivered
	slow     chan struct{} // closed when the subscriber stalled
	stopped  chan struct{} // closed when Watch returns
	fatal    chan error    // the consumer cannot continue

	mu         sync.Mutex
	done       bool
	seen       uint64    // stream sequence of the last message received
	seenAt     time.Time // its JetStream timestamp
	lastSent   uint64    // stream sequence of the last event sent
	lastSentAt time.Time // its JetStream timestamp
	queued     int       // events accepted from NATS, not yet sent
	consumer   string    // consumer that delivered the last message ...
	dseq       uint64    // ... and its delivery sequence there
	stopper    func()    // stops consuming; nil until set
}

// msgOverhead is roughly what JetStream stores per message besides its
// subject and data (headers with the message id, sequence, timestamp).
const msgOverhead = 96

// newSubscription returns the subscription for a consumer starting after
// the stream sequence from.
func newSubscription(l *Log, subjects []string, from uint64, buffer int, stall time.Duration) *subscription {
	return &subscription{
		log:      l,
		seen:     from, // nothing up to here is for the subscriber
		subjects: subjects,
		stall:    stall,
		buf:      make(chan delivered, buffer),
		slow:     make(chan struct{}),
		stopped:  make(chan struct{}),
		fatal:    make(chan error, 1),
	}
}

func (s *subscription) capacity() int { return cap(s.buf) }

// handle is the consumer callback. The ordered consumer calls it in stream
// order, once per message, across its own re-creations.
func (s *subscription) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		s.fail(fmt.Errorf("%w: message without metadata: %w", ErrUnavailable, err))
		return
	}
	d, ok := s.accept(msg, md)
	if !ok {
		return
	}
	select {
	case s.buf <- d:
		return
	default:
	}
	t := time.NewTimer(s.stall)
	defer t.Stop()
	select {
	case s.buf <- d:
	case <-s.stopped:
	case <-t.C:
		s.mu.Lock()
		stop := s.stopper
		if !s.done {
			s.done = true
			close(s.slow)
		}
		s.mu.Unlock()
		// The subscription is over, but Watch returns only once the
		// subscriber's send does: stop pulling messages meanwhile, they
		// would only be discarded.
		if stop != nil {
			go stop()
		}
	}
}

// setStopper gives the subscription the means to stop its consumer when
// the subscriber turns out too slow (at once if it already did).
func (s *subscription) setStopper(stop func()) {
	s.mu.Lock()
	s.stopper = stop
	slow := s.isSlow()
	s.mu.Unlock()
	if slow {
		go stop()
	}
}

func (s *subscription) isSlow() bool {
	select {
	case <-s.slow:
		return true
	default:
		return false
	}
}

// accept records msg as received and reports whether it is an event for the
// subscriber. An accepted event counts as queued before it is in the buffer,
// so that passed never moves beyond it.
func (s *subscription) accept(msg jetstream.Msg, md *jetstream.MsgMetadata) (delivered, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || md.Sequence.Stream <= s.seen {
		return delivered{}, false // ended, or a redelivery: never send an event twice
	}
	s.seen, s.seenAt = md.Sequence.Stream, md.Timestamp
	s.consumer, s.dseq = md.Consumer, md.Sequence.Consumer
	if !s.matches(msg.Subject()) {
		return delivered{}, false // only when the server could not apply the exact filter
	}
	ev, err := parseEvent(msg.Data())
	if err != nil {
		// Not written by Append: nothing a subscriber could use.
		s.log.logger.Warn("events: skipping undecodable message", "seq", md.Sequence.Stream, "err", err)
		return delivered{}, false
	}
	s.queued++
	return delivered{
		seq:     md.Sequence.Stream,
		at:      md.Timestamp,
		pending: md.NumPending,
		size:    len(msg.Subject()) + len(msg.Data()) + msgOverhead,
		event:   ev,
	}, true
}

func (s *subscription) matches(subject string) bool {
	for _, p := range s.subjects {
		if subjectMatches(p, subject) {
			return true
		}
	}
	return false
}

// consumeError gets the consumer's errors; it recovers from most (missed
// heartbeats, reconnects) by itself, but not from a closed connection.
func (s *subscription) consumeError(_ jetstream.ConsumeContext, err error) {
	if isConnClosed(err) {
		s.fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
}

func (s *subscription) fail(err error) {
	select {
	case s.fatal <- err:
	default:
	}
}

// sent records that the event d reached the subscriber.
func (s *subscription) sent(d *delivered) {
	s.mu.Lock()
	s.queued--
	s.lastSent, s.lastSentAt = d.seq, d.at
	s.mu.Unlock()
}

// passed is how far the subscriber has got: with nothing queued, every
// message received was sent or filtered out; otherwise the last one sent.
// It also returns that message's timestamp (zero if none was received).
func (s *subscription) passed() (uint64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued == 0 {
		return s.seen, s.seenAt
	}
	return s.lastSent, s.lastSentAt
}

func (s *subscription) seenSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

// receivedAll reports whether every message ci says its consumer delivered
// has been received here, and returns the last sequence received.
func (s *subscription) receivedAll(ci *jetstream.ConsumerInfo) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A consumer that delivered nothing yet may still have moved its stream
	// position past what reached us: the client library re-creates an
	// ordered consumer after the last message it handed on, which may be
	// one whose handle has not recorded it yet. A fresh consumer's
	// Delivered.Stream is its start - 1.
	fresh := ci.Delivered.Consumer == 0 && ci.Delivered.Stream <= s.seen
	ok := fresh || s.consumer == ci.Name && s.dseq >= ci.Delivered.Consumer
	return s.seen, ok
}

func (s *subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.done = true
	}
	select {
	case <-s.stopped:
	default:
		close(s.stopped)
	}
}
