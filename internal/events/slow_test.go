package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// Once a subscriber is found too slow, its consumer stops pulling, although
// Watch can only return once the blocked send does: events appended
// meanwhile are not delivered to it only to be discarded.
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
		mustAppend(t, l, makeEvents(t, 3, "TOPUP.SETTLED", "")) // one sent, one buffered, one stalls
		time.Sleep(time.Second)                                 // past the stall timeout
		before := consumerDelivered(t, l)

		const more = 200
		mustAppend(t, l, makeEvents(t, more, "TOPUP.SETTLED", ""))
		time.Sleep(time.Second)
		after := consumerDelivered(t, l)
		// Pull requests already made may still be answered, no more.
		if after-before >= more/2 {
			t.Errorf("the stopped consumer was delivered %d of %d events appended after the subscriber stalled", after-before, more)
		}
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

// consumerDelivered is the highest stream sequence delivered by any
// consumer of l's stream.
func consumerDelivered(t *testing.T, l *Log) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := l.js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var most uint64
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		most = max(most, ci.Delivered.Stream)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return most
}
