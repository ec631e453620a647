package events

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A consumer that delivered nothing counts as "everything received" only
// when its stream position is not past the last message that reached the
// subscription: a re-created ordered consumer may start after a message
// whose callback has not recorded it yet.
func TestReceivedAllFreshConsumer(t *testing.T) {
	s := newSubscription(nil, nil, 40, 4, time.Second)
	fresh := func(name string, streamSeq uint64) *jetstream.ConsumerInfo {
		return &jetstream.ConsumerInfo{Name: name, Delivered: jetstream.SequenceInfo{Consumer: 0, Stream: streamSeq}}
	}
	if _, ok := s.receivedAll(fresh("c1", 40)); !ok {
		t.Error("new consumer starting right after the start: not everything received")
	}
	if last, ok := s.receivedAll(fresh("c1", 41)); ok {
		t.Errorf("fresh consumer past a message not received yet: everything received up to %d", last)
	}
	s.seen, s.consumer, s.dseq = 41, "c1", 1
	if last, ok := s.receivedAll(fresh("c2", 41)); !ok || last != 41 {
		t.Errorf("re-created consumer after the last message received: %d %v", last, ok)
	}
	if _, ok := s.receivedAll(&jetstream.ConsumerInfo{Name: "c1", Delivered: jetstream.SequenceInfo{Consumer: 2, Stream: 45}}); ok {
		t.Error("consumer delivered more than received: everything received")
	}
	if _, ok := s.receivedAll(&jetstream.ConsumerInfo{Name: "c1", Delivered: jetstream.SequenceInfo{Consumer: 1, Stream: 41}}); !ok {
		t.Error("consumer delivered exactly what was received: not everything received")
	}
}
