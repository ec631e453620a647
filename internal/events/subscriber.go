package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// subscriber is the state of one Watch that the tail and the Watch's own
// goroutine share. The tail appends matching entries to its queue and never
// waits for it: when the queue is full the subscriber is taken off the tail
// (overflow), and its Watch reads the rest from the log once it has sent
// what is queued (a catch-up), so a subscriber riding out a burst is paced,
// not dropped, and a stuck one costs nothing further.
//
// An idle subscriber holds no buffer: the queue is allocated when an event
// arrives and released when it has been sent.
type subscriber struct {
	sel    *selection
	buffer int           // most entries queued
	wake   chan struct{} // a signal that the queue or the state changed
	// heartbeat: the Watch's heartbeat timer fired (see tick).
	heartbeat atomic.Bool

	mu         sync.Mutex
	queue      []*entry // matching entries from the tail, oldest first, from head on
	head       int
	registered bool   // on the tail: it appends matching entries
	floor      uint64 // entries at or below are not for it: it started past the tail
	// overflow: the queue was full when the entry after through arrived, so
	// the subscriber was taken off the tail; the queue holds every matching
	// entry up to through.
	overflow bool
	through  uint64
	// behindSince is when the tail found the queue full, and then when the
	// subscriber last completed a send: while it is behind, it must complete
	// one at least every stall timeout, or it is too slow. Zero when it is
	// not behind (a catch-up, which has a stall timeout of its own, clears it).
	behindSince time.Time
	ended       error // set by the tail when the subscription cannot go on
}

func newSubscriber(sel *selection, buffer int) *subscriber {
	return &subscriber{sel: sel, buffer: buffer, wake: make(chan struct{}, 1)}
}

func (s *subscriber) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// tick is the heartbeat timer firing.
func (s *subscriber) tick() {
	s.heartbeat.Store(true)
	s.notify()
}

// ticked reports whether the heartbeat timer fired since the last call.
func (s *subscriber) ticked() bool {
	return s.heartbeat.Load() && s.heartbeat.Swap(false)
}

// push is the tail handing over a matching entry. queued reports whether
// the entry was queued (it is not when the subscriber started past it);
// keep is false when the queue was full, and the tail then takes the
// subscriber off. It never waits for the subscriber.
func (s *subscriber) push(e *entry, now time.Time) (queued, keep bool) {
	s.mu.Lock()
	if e.seq <= s.floor {
		s.mu.Unlock()
		return false, true
	}
	if len(s.queue)-s.head >= s.buffer {
		s.registered, s.overflow, s.through = false, true, e.seq-1
		if s.behindSince.IsZero() {
			s.behindSince = now
		}
		s.mu.Unlock()
		s.notify()
		return false, false
	}
	// Only an empty queue needs a wake: a subscriber sends until it finds
	// its queue empty, under the same lock, so it takes this entry before
	// it waits again (one wake per burst rather than one per entry).
	wake := s.head == len(s.queue)
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	if wake {
		s.notify()
	}
	return true, true
}

// end is the tail ending the subscription (it takes the subscriber off).
func (s *subscriber) end(err error) {
	s.mu.Lock()
	s.registered = false
	if s.ended == nil {
		s.ended = err
	}
	s.mu.Unlock()
	s.notify()
}

// take returns the next queued entry, or nil.
func (s *subscriber) take() (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return nil, s.ended
	}
	if s.head == len(s.queue) {
		return nil, nil
	}
	e := s.queue[s.head]
	s.queue[s.head] = nil
	s.head++
	if s.head == len(s.queue) {
		// Drained: a small buffer is kept while events flow (release drops
		// it once the subscriber is idle), a large one goes at once.
		s.queue, s.head = s.queue[:0], 0
		if cap(s.queue) > keptBuffer {
			s.queue = nil
		}
	}
	return e, nil
}

// keptBuffer is the largest buffer a drained subscriber keeps until it is
// idle: enough for a steady trickle of events without allocating for each.
const keptBuffer = 16

// release drops the buffer of a subscriber with nothing queued, so that an
// idle subscriber holds none.
func (s *subscriber) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		s.queue, s.head = nil, 0
	}
}

// markBehind starts the stall clock of a subscriber that is catching up,
// unless it runs already.
func (s *subscriber) markBehind(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.behindSince.IsZero() {
		s.behindSince = now
	}
}

// sent records that the subscriber completed a send just now, and reports
// whether it was behind for the stall timeout before it did: a send that
// was stuck while the tail had to let go of the subscriber. A subscriber
// that keeps sending while behind is paced, not ended. The clock is read
// only then.
func (s *subscriber) sent(stall time.Duration) (tooSlow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.behindSince.IsZero() {
		return false
	}
	now := time.Now()
	if now.Sub(s.behindSince) >= stall {
		return true
	}
	s.behindSince = now
	return false
}

// livePosition is how far the subscriber has got on the tail, given the
// tail's position read before the call: everything matching up to there is
// sent when nothing is queued. ok is false when the subscriber is not on the
// tail or has entries queued (then only what was sent counts), and after an
// overflow it is the position up to which the queue was complete.
func (s *subscriber) livePosition(tail uint64) (pos uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head != len(s.queue) || s.ended != nil {
		return 0, false
	}
	switch {
	case s.registered:
		return max(tail, s.floor), true
	case s.overflow:
		return s.through, true
	}
	return 0, false
}

// overflowed reports whether the subscriber was taken off the tail with
// nothing left queued, and up to where it had everything: its Watch must
// catch up from the log from there.
func (s *subscriber) overflowed() (through uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.overflow || s.head != len(s.queue) {
		return 0, false
	}
	return s.through, true
}

// err is why the tail ended the subscription, or nil.
func (s *subscriber) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}
