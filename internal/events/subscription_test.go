package events

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeMsg is a JetStream message as a consumer callback gets it.
type fakeMsg struct {
	subject string
	data    []byte
	md      jetstream.MsgMetadata
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return &m.md, nil }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return nil }
func (m *fakeMsg) Subject() string                           { return m.subject }
func (m *fakeMsg) Reply() string                             { return "" }
func (m *fakeMsg) Ack() error                                { return nil }
func (m *fakeMsg) DoubleAck(context.Context) error           { return nil }
func (m *fakeMsg) Nak() error                                { return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error          { return nil }
func (m *fakeMsg) InProgress() error                         { return nil }
func (m *fakeMsg) Term() error                               { return nil }
func (m *fakeMsg) TermWithReason(string) error               { return nil }

// A catch-up hands on each message once, in order, whatever its consumer
// delivers: a consumer the client library re-created after a gap starts
// after the last message it delivered, which may be one whose callback has
// not recorded it yet, so the same sequence can come twice. Messages its
// (widened) consumer filter let through but the exact filter does not are
// passed on as not matching; each carries how much was pending after it.
func TestReplayHandsOnEachMessageOnce(t *testing.T) {
	l := &Log{cfg: LogConfig{Subject: "p"}}
	ag := uuid.NewString()
	sel, err := Filter{Families: []string{FamilyTopup}, AccountGroupID: ag}.selection("p")
	if err != nil {
		t.Fatal(err)
	}
	r := &replay{log: l, sel: sel, stall: time.Second, buf: make(chan replayed, 10), slow: make(chan struct{}),
		stopped: make(chan struct{}), fatal: make(chan error, 1), received: 40}
	ev := makeEvents(t, 1, "TOPUP.SETTLED", ag)[0]
	data, _ := ev.MarshalJSON()
	msg := func(seq, pending uint64, subject string) *fakeMsg {
		return &fakeMsg{subject: subject, data: data, md: jetstream.MsgMetadata{
			Sequence: jetstream.SequencePair{Stream: seq}, NumPending: pending, Timestamp: time.Now()}}
	}
	for _, m := range []*fakeMsg{
		msg(40, 3, "p.topup.settled."+ag),               // at the start position: not after it
		msg(41, 2, "p.topup.settled."+ag),               // delivered
		msg(41, 2, "p.topup.settled."+ag),               // again, by a re-created consumer
		msg(43, 1, "p.withdrawal.new."+ag),              // through a widened filter only
		msg(42, 5, "p.topup.settled."+ag),               // behind what was received
		msg(44, 0, "p.topup.settled."+uuid.NewString()), // another account group
	} {
		r.handle(m)
	}
	var got []replayed
	for len(r.buf) > 0 {
		got = append(got, <-r.buf)
	}
	want := []struct {
		seq, pending uint64
		matches      bool
	}{{41, 2, true}, {43, 1, false}, {44, 0, false}}
	if len(got) != len(want) {
		t.Fatalf("handed on %d messages, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].e.seq != w.seq || got[i].pending != w.pending || got[i].matches != w.matches {
			t.Errorf("message %d = seq %d pending %d matches %v, want %+v", i, got[i].e.seq, got[i].pending, got[i].matches, w)
		}
	}
	if got[0].e.event.ID != ev.ID {
		t.Errorf("matching message decoded as %+v", got[0].e.event)
	}
	if r.receivedSeq() != 44 {
		t.Errorf("received up to %d, want 44", r.receivedSeq())
	}
}

// Message.Memo builds once per event, filter and key, for any number of
// subscribers at once; a heartbeat has no event to share and builds every
// time.
func TestMessageMemo(t *testing.T) {
	e := &entry{seq: 1}
	var builds atomic.Int32
	build := func() (any, error) { builds.Add(1); return "encoded", nil }
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			for _, key := range []string{"a", "b"} {
				for _, filter := range []uint32{1, 2} {
					v, err := Message{entry: e, filter: filter}.Memo(key, build)
					if v != "encoded" || err != nil {
						t.Errorf("Memo = %v, %v", v, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := builds.Load(); n != 4 {
		t.Errorf("built %d times for two keys and two filters", n)
	}
	for range 3 {
		Message{}.Memo("a", build)
	}
	if n := builds.Load(); n != 7 {
		t.Errorf("heartbeats built %d times, want 3", n-4)
	}
}
