package events

import (
	"testing"
)

// A heartbeat may advance only as far as the tail has read, whatever the
// stream's last sequence is: on a replicated stream the tail's consumer may
// run on a follower that has not stored the latest events yet, and a
// heartbeat past them would skip them. The heartbeat never consults the
// stream's LastSeq at all; this pins that the tail's position, read before
// the queue is looked at, is the bound.
func TestHeartbeatNeverPastTheTail(t *testing.T) {
	l := &Log{}
	l.fanout = newFanout(l, 0)
	var got uint64
	w := &watcher{log: l, id: newStreamIdentity("S", 1), sel: &selection{}, send: func(m Message) error {
		p, _ := decodeToken(m.Token)
		got = p.seq
		return nil
	}}
	for _, tail := range []uint64{3, 7, 7, 12} {
		l.fanout.tail.Store(tail)
		w.sub = newSubscriber(w.sel, 10)
		w.sub.registered = true
		if err := w.heartbeat(true); err != nil {
			t.Fatal(err)
		}
		if got != tail {
			t.Errorf("heartbeat at %d with the tail at %d", got, tail)
		}
	}
}
