package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// Once a subscriber's buffer is full, the tail stops handing it events,
// although Watch can only return once the blocked send does: events
// appended meanwhile are not queued for it only to be discarded, and no
// consumer reads them on its behalf.
func TestSlowSubscriberStopsConsuming(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		release := make(chan struct{})
		done := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			first := true
			done <- l.Watch(context.Background(), Filter{}, "", func(m Message) error {
				if first {
					first = false
					close(started)
				}
				if m.Event != nil {
					<-release // a subscriber that stopped reading
				}
				return nil
			}, WithBuffer(1), WithHeartbeat(time.Hour), WithStallTimeout(200*time.Millisecond))
		}()
		<-started
		mustAppend(t, l, makeEvents(t, 3, "TOPUP.SETTLED", "")) // one sent, one buffered, one overflows
		waitFor(t, "the subscriber to be taken off the tail", func() bool { return l.fanout.onTail() == 0 })
		before := l.fanout.handedOut.Load()

		const more = 200
		mustAppend(t, l, makeEvents(t, more, "TOPUP.SETTLED", ""))
		waitFor(t, "the tail to read the new events", func() bool { return l.fanout.position() == 3+more })
		if n := l.fanout.handedOut.Load() - before; n != 0 {
			t.Errorf("the tail handed %d of %d events appended after the buffer was full to the stuck subscriber", n, more)
		}
		if n := consumerCount(t, l); n != 1 {
			t.Errorf("%d consumers on the stream, want the tail alone", n)
		}
		time.Sleep(300 * time.Millisecond) // past the stall timeout
		close(release)
		select {
		case err := <-done:
			if !errors.Is(err, ErrSlowSubscriber) {
				t.Fatalf("Watch = %v, want ErrSlowSubscriber", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not end")
		}
	})
}

// consumerCount is how many consumers l's stream has.
func consumerCount(t *testing.T, l *Log) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := l.js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	lister := s.ListConsumers(ctx)
	for range lister.Info() {
		n++
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
