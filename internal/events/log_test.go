package events

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// Every appended event reaches a subscriber exactly once, in log order, even
// when deliveries repeat and overlap.
func TestAppendWatchExactlyOnce(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		s := startWatch(t, l, Filter{}, "")
		evs := makeEvents(t, 30, "TOPUP.SETTLED", uuid.NewString())

		mustAppend(t, l, evs[:10])
		mustAppend(t, l, evs[:10])   // the same delivery again
		mustAppend(t, l, evs[5:20])  // overlapping batch
		mustAppend(t, l, evs[20:30]) // the rest
		mustAppend(t, l, evs[25:27])
		mustAppend(t, l, nil)

		got := s.events(t, 30)
		equalIDs(t, msgIDs(got), ids(evs))
		s.quiet(t, 300*time.Millisecond)
		if n := storedCount(t, l); n != 30 {
			t.Errorf("stream holds %d messages, want 30", n)
		}
		for i, m := range got {
			if !sameEvent(*m.Event, evs[i]) {
				t.Fatalf("event %d = %+v, want %+v", i, *m.Event, evs[i])
			}
		}
	})
}

func TestWatchFilters(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		agA, agB := uuid.NewString(), uuid.NewString()
		filters := map[string]Filter{
			"all":        {},
			"group A":    {AccountGroupID: agA},
			"topups":     {Families: []string{FamilyTopup}},
			"payments B": {Families: []string{FamilyDirectDebit, FamilyWithdrawal}, AccountGroupID: agB},
			"two types":  {Types: []string{"TOPUP.SETTLED", "CASH_BALANCE.UPDATED"}},
			"type+fam A": {Types: []string{"WITHDRAWAL.NEW"}, Families: []string{FamilyCashBalance}, AccountGroupID: agA},
		}
		subs := map[string]*sub{}
		for name, f := range filters {
			subs[name] = startWatch(t, l, f, "")
		}

		var all []Event
		for _, typ := range []string{"TOPUP.SETTLED", "TOPUP.CANCELLED", "DIRECT_DEBIT.NEW", "WITHDRAWAL.NEW",
			"WITHDRAWAL.CONFIRMED", "CASH_BALANCE.UPDATED", "VIRTUAL_CASH_INCREASE.ISSUED"} {
			for _, ag := range []string{agA, agB, ""} {
				all = append(all, makeEvents(t, 2, typ, ag)...)
			}
		}
		mustAppend(t, l, all)

		for name, f := range filters {
			var want []string
			for _, e := range all {
				if matchesFilter(f, e) {
					want = append(want, e.ID)
				}
			}
			if len(want) == 0 {
				t.Fatalf("%s: test matches nothing", name)
			}
			got := subs[name].events(t, len(want))
			equalIDs(t, msgIDs(got), want)
			subs[name].quiet(t, 200*time.Millisecond)
		}
	})
}

// matchesFilter is the Filter semantics, spelled out independently.
func matchesFilter(f Filter, e Event) bool {
	if f.AccountGroupID != "" && e.AccountGroupID != f.AccountGroupID {
		return false
	}
	if len(f.Types) == 0 && len(f.Families) == 0 {
		return true
	}
	return slices.Contains(f.Types, e.Type) || slices.Contains(f.Families, e.Family())
}

func TestResume(t *testing.T) {
	forEachCatchUp(t, func(t *testing.T, open func(...func(*LogConfig)) *Log) {
		l := open()
		ag := uuid.NewString()
		f := Filter{Families: []string{FamilyTopup, FamilyCashBalance}, AccountGroupID: ag}
		s := startWatch(t, l, f, "")

		var want []Event
		for i := 0; i < 4; i++ {
			batch := slices.Concat(makeEvents(t, 3, "TOPUP.CONFIRMED", ag), makeEvents(t, 2, "CASH_BALANCE.UPDATED", ag),
				makeEvents(t, 3, "TOPUP.CONFIRMED", uuid.NewString()), makeEvents(t, 2, "WITHDRAWAL.NEW", ag))
			mustAppend(t, l, batch)
			want = append(want, batch[:5]...)
		}
		got := s.events(t, 7) // disconnect mid-stream
		s.stop(t)
		equalIDs(t, msgIDs(got), ids(want[:7]))

		// Events appended while disconnected are part of "the rest".
		more := makeEvents(t, 3, "TOPUP.SETTLED", ag)
		mustAppend(t, l, more)
		want = append(want, more...)

		r := startWatch(t, l, f, got[6].Token)
		rest := r.events(t, len(want)-7)
		equalIDs(t, msgIDs(rest), ids(want[7:]))
		r.quiet(t, 300*time.Millisecond)

		// Resuming from every token gives exactly what followed it.
		r.stop(t)
		all := append(got, rest...)
		for _, i := range []int{0, 3, 11, len(all) - 1} {
			r := startWatch(t, l, f, all[i].Token)
			if n := len(all) - i - 1; n > 0 {
				equalIDs(t, msgIDs(r.events(t, n)), msgIDs(all[i+1:]))
			}
			r.quiet(t, 200*time.Millisecond)
			r.stop(t)
		}
	})
}

// A heartbeat's token is safe to resume from, it is sent from the start, and
// it moves past events the filter skips, so a quiet subscriber's token does
// not age out of retention.
func TestHeartbeatTokens(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		t.Run("one subject", func(t *testing.T) {
			ag := uuid.NewString()
			testHeartbeatTokens(t, be, Filter{Types: []string{"CASH_BALANCE.UPDATED"}, AccountGroupID: ag}, ag)
		})
		t.Run("several subjects", func(t *testing.T) {
			ag := uuid.NewString()
			testHeartbeatTokens(t, be, Filter{Families: []string{FamilyCashBalance, FamilyWithdrawal}, AccountGroupID: ag}, ag)
		})
	})
}

func testHeartbeatTokens(t *testing.T, be eventstest.Backend, f Filter, ag string) {
	l := openBackend(t, be)
	mustAppend(t, l, makeEvents(t, 3, "TOPUP.SETTLED", ag))

	// waitHeartbeatAt waits for a heartbeat whose token is the end of the log.
	waitHeartbeatAt := func(s *sub) Message {
		t.Helper()
		last := storedCount(t, l)
		for deadline := time.Now().Add(10 * time.Second); ; {
			hb := s.heartbeat(t)
			if tokenSeq(t, hb.Token) == last {
				return hb
			}
			if time.Now().After(deadline) {
				t.Fatalf("heartbeat token at %d, want it to reach %d", tokenSeq(t, hb.Token), last)
			}
		}
	}

	s := startWatch(t, l, f, "")
	// Only events the filter skips: heartbeats advance past them.
	mustAppend(t, l, makeEvents(t, 5, "TOPUP.SETTLED", ag))
	waitHeartbeatAt(s)
	// One it wants, then more it skips: past those too.
	first := makeEvents(t, 1, "CASH_BALANCE.UPDATED", ag)
	mustAppend(t, l, slices.Concat(first, makeEvents(t, 4, "TOPUP.SETTLED", ag)))
	equalIDs(t, msgIDs(s.events(t, 1)), ids(first))
	hb := waitHeartbeatAt(s)
	s.stop(t)

	// Disconnected: matching events arrive among others.
	want := makeEvents(t, 2, "CASH_BALANCE.UPDATED", ag)
	mustAppend(t, l, slices.Concat(makeEvents(t, 2, "TOPUP.SETTLED", ag), want[:1],
		makeEvents(t, 1, "CASH_BALANCE.UPDATED", uuid.NewString()), want[1:]))

	r := startWatch(t, l, f, hb.Token)
	equalIDs(t, msgIDs(r.events(t, 2)), ids(want))
	r.quiet(t, 300*time.Millisecond)
	r.stop(t)
}

// A heartbeat never points past an event handed to the subscriber but not
// yet sent; on the tail with nothing queued it moves past filtered-out
// messages, as far as the tail has read; after an overflow, as far as the
// queue was complete; and it never goes backwards.
func TestHeartbeatPosition(t *testing.T) {
	l := &Log{}
	l.fanout = newFanout(l, 0)
	sel := &selection{}
	var sentTokens []uint64
	w := &watcher{log: l, id: newStreamIdentity("S", 1), sel: sel, send: func(m Message) error {
		p, _ := decodeToken(m.Token)
		sentTokens = append(sentTokens, p.seq)
		return nil
	}}
	steps := []struct {
		name       string
		tail       uint64 // how far the tail has read
		passed     uint64 // last position handed out
		queued     int    // entries handed over, not yet sent
		registered bool   // on the tail
		floor      uint64
		overflow   bool
		through    uint64
		live       bool // a heartbeat of the live loop, not of a catch-up
		want       uint64
	}{
		{name: "events 8..10 queued", tail: 10, passed: 7, queued: 3, registered: true, live: true, want: 7},
		{name: "all sent, tail further", tail: 12, passed: 7, registered: true, live: true, want: 12},
		{name: "started ahead of the tail", tail: 12, passed: 12, registered: true, floor: 15, live: true, want: 15},
		{name: "off the tail", tail: 20, passed: 15, live: true, want: 15},
		{name: "overflowed, queue sent", tail: 30, passed: 15, overflow: true, through: 18, live: true, want: 18},
		{name: "overflowed, queue not sent", tail: 30, passed: 18, queued: 1, overflow: true, through: 25, live: true, want: 18},
		{name: "catching up", tail: 40, passed: 18, registered: true, live: false, want: 18},
		{name: "never backwards", tail: 5, passed: 18, registered: true, live: true, want: 18},
	}
	for _, st := range steps {
		l.fanout.tail.Store(st.tail)
		s := newSubscriber(sel, 100)
		for i := range st.queued {
			s.queue = append(s.queue, &entry{seq: st.passed + uint64(i) + 1})
		}
		s.registered, s.floor, s.overflow, s.through = st.registered, st.floor, st.overflow, st.through
		w.sub, w.passed = s, st.passed
		if err := w.heartbeat(st.live); err != nil {
			t.Fatal(err)
		}
		if got := sentTokens[len(sentTokens)-1]; got != st.want {
			t.Errorf("%s: heartbeat at %d, want %d", st.name, got, st.want)
		}
	}
}

// Heartbeats sent between events never point past an unsent matching event:
// resuming from any heartbeat gets every later event.
func TestHeartbeatTokensUnderLoad(t *testing.T) {
	forEachCatchUp(t, func(t *testing.T, open func(...func(*LogConfig)) *Log) {
		l := open()
		ag := uuid.NewString()
		f := Filter{AccountGroupID: ag}
		s := startWatch(t, l, f, "", WithHeartbeat(20*time.Millisecond))

		var want []Event
		for i := 0; i < 20; i++ {
			evs := makeEvents(t, 3, "TOPUP.SETTLED", ag)
			mustAppend(t, l, slices.Concat(evs, makeEvents(t, 3, "TOPUP.SETTLED", uuid.NewString())))
			want = append(want, evs...)
			time.Sleep(15 * time.Millisecond)
		}
		var msgs []Message
		for n := 0; n < len(want); {
			select {
			case m := <-s.msgs:
				msgs = append(msgs, m)
				if m.Event != nil {
					n++
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("got %d of %d events", n, len(want))
			}
		}
		s.stop(t)
		// After each heartbeat, exactly the events that followed it.
		var checked int
		for i, m := range msgs {
			if m.Event != nil || checked >= 3 {
				continue
			}
			var after []string
			for _, n := range msgs[i+1:] {
				if n.Event != nil {
					after = append(after, n.Event.ID)
				}
			}
			if len(after) == 0 {
				continue
			}
			checked++
			r := startWatch(t, l, f, m.Token)
			equalIDs(t, msgIDs(r.events(t, len(after))), after)
			r.quiet(t, 100*time.Millisecond)
			r.stop(t)
		}
		if checked == 0 {
			t.Log("no heartbeat between events; nothing to check")
		}
	})
}

func TestTokenExpired(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		t.Run("purged", func(t *testing.T) {
			l := openBackend(t, be)
			s := startWatch(t, l, Filter{}, "")
			mustAppend(t, l, makeEvents(t, 5, "TOPUP.SETTLED", ""))
			got := s.events(t, 5)
			s.stop(t)

			stream, err := l.js.Stream(context.Background(), l.cfg.Stream)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Purge(context.Background()); err != nil {
				t.Fatal(err)
			}
			err = l.Watch(context.Background(), Filter{}, got[1].Token, func(Message) error { return nil })
			if !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("Watch = %v, want ErrTokenExpired", err)
			}
			// The last token is still good: nothing after it was removed.
			r := startWatch(t, l, Filter{}, got[4].Token)
			r.quiet(t, 200*time.Millisecond)
		})
		t.Run("max age", func(t *testing.T) {
			l := openBackend(t, be, func(c *LogConfig) { c.MaxAge = time.Second })
			s := startWatch(t, l, Filter{}, "")
			mustAppend(t, l, makeEvents(t, 3, "TOPUP.SETTLED", ""))
			got := s.events(t, 3)
			s.stop(t)
			deadline := time.Now().Add(10 * time.Second)
			for storedCount(t, l) != 0 {
				if time.Now().After(deadline) {
					t.Fatal("events did not expire")
				}
				time.Sleep(100 * time.Millisecond)
			}
			err := l.Watch(context.Background(), Filter{}, got[0].Token, func(Message) error { return nil })
			if !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("Watch = %v, want ErrTokenExpired", err)
			}
		})
	})
}

func TestBadToken(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		other := openBackend(t, be)
		s := startWatch(t, other, Filter{}, "")
		mustAppend(t, other, makeEvents(t, 1, "TOPUP.SETTLED", ""))
		foreign := s.events(t, 1)[0].Token

		info, err := l.streamInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		beyond := l.identity(info).token(filterHash(mustSubjects(t, l, Filter{})), info.State.LastSeq+5)
		for name, tok := range map[string]string{
			"garbage":         "not-a-token",
			"empty-ish":       "====",
			"another log":     foreign,
			"beyond the end":  beyond,
			"truncated":       foreign[:20],
			"other version":   "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			"checksum broken": flip(beyond, 20),
		} {
			err := l.Watch(context.Background(), Filter{}, tok, func(Message) error { return nil })
			if !errors.Is(err, ErrBadToken) {
				t.Errorf("%s: Watch = %v, want ErrBadToken", name, err)
			}
		}
		err = l.Watch(context.Background(), Filter{Families: []string{"NOPE"}}, "", func(Message) error { return nil })
		if !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("bad filter: Watch = %v", err)
		}
	})
}

// Tokens survive a restart of the gateway; a log that was deleted and
// re-created under the same name turns old tokens into ErrTokenExpired.
func TestTokenAcrossRestart(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		cfg := backendConfig(t, be)
		l := openLog(t, cfg)
		s := startWatch(t, l, Filter{}, "")
		evs := makeEvents(t, 4, "WITHDRAWAL.NEW", "")
		mustAppend(t, l, evs)
		got := s.events(t, 4)
		s.stop(t)
		closeLog(l)

		l = openLog(t, cfg)
		r := startWatch(t, l, Filter{}, got[1].Token)
		equalIDs(t, msgIDs(r.events(t, 2)), ids(evs[2:]))
		r.stop(t)
		// Still de-duplicating after the restart.
		mustAppend(t, l, evs)
		if n := storedCount(t, l); n != 4 {
			t.Errorf("stream holds %d messages, want 4", n)
		}

		if err := l.js.DeleteStream(context.Background(), cfg.Stream); err != nil {
			t.Fatal(err)
		}
		closeLog(l)
		l = openLog(t, cfg)
		err := l.Watch(context.Background(), Filter{}, got[1].Token, func(Message) error { return nil })
		if !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("Watch on a re-created log = %v, want ErrTokenExpired", err)
		}
	})
}

// A subscriber whose send blocks is ended with ErrSlowSubscriber; a fast
// one gets everything and Append is never held up.
func TestSlowSubscriber(t *testing.T) {
	forEachCatchUp(t, func(t *testing.T, open func(...func(*LogConfig)) *Log) {
		l := open()
		fast := startWatch(t, l, Filter{}, "")

		release := make(chan struct{})
		var slowSent atomic.Int32
		slowDone := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			var once sync.Once
			slowDone <- l.Watch(context.Background(), Filter{}, "", func(m Message) error {
				once.Do(func() { close(started) })
				if m.Event != nil {
					slowSent.Add(1)
					<-release // a subscriber that stopped reading
				}
				return nil
			}, WithBuffer(8), WithHeartbeat(time.Hour), WithStallTimeout(300*time.Millisecond))
		}()
		<-started

		const batches, per = 20, 10
		var want []Event
		for i := 0; i < batches; i++ {
			evs := makeEvents(t, per, "TOPUP.SETTLED", "")
			start := time.Now()
			mustAppend(t, l, evs)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Append took %v with a stuck subscriber", d)
			}
			want = append(want, evs...)
		}
		equalIDs(t, msgIDs(fast.events(t, len(want))), ids(want))
		time.Sleep(500 * time.Millisecond) // past the stall timeout
		mustAppend(t, l, makeEvents(t, 1, "TOPUP.SETTLED", ""))
		fast.events(t, 1)

		select {
		case err := <-slowDone:
			t.Fatalf("slow Watch returned while its send was blocked: %v", err)
		default:
		}
		close(release)
		select {
		case err := <-slowDone:
			if !errors.Is(err, ErrSlowSubscriber) {
				t.Fatalf("slow Watch = %v, want ErrSlowSubscriber", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("slow Watch did not end")
		}
		if n := slowSent.Load(); n > 1 {
			t.Errorf("slow subscriber got %d events after overflowing", n)
		}
		fast.quiet(t, 100*time.Millisecond)
	})
}

// A backlog far larger than the buffer is replayed in full to a subscriber
// that reads steadily but slower than NATS delivers: it is paced, not cut.
func TestBacklogPaced(t *testing.T) {
	forEachCatchUp(t, func(t *testing.T, open func(...func(*LogConfig)) *Log) {
		l := open()
		first := startWatch(t, l, Filter{}, "")
		start := first.heartbeat(t).Token
		first.stop(t)
		var want []Event
		for i := 0; i < 6; i++ {
			evs := makeEvents(t, 50, "CASH_BALANCE.UPDATED", "")
			mustAppend(t, l, evs)
			want = append(want, evs...)
		}
		var got []string
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		err := l.Watch(ctx, Filter{}, start, func(m Message) error {
			if m.Event != nil {
				got = append(got, m.Event.ID)
				time.Sleep(200 * time.Microsecond)
				if len(got) == len(want) {
					cancel()
				}
			}
			return nil
		}, WithBuffer(4), WithStallTimeout(2*time.Second))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch = %v after %d of %d events", err, len(got), len(want))
		}
		equalIDs(t, got, ids(want))
	})
}

func TestWatchEnds(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		s := startWatch(t, l, Filter{}, "")
		sendErr := errors.New("client gone")
		var calls atomic.Int32
		done := make(chan error, 1)
		go func() {
			done <- l.Watch(context.Background(), Filter{}, "", func(Message) error {
				if calls.Add(1) > 1 {
					return sendErr
				}
				return nil
			}, WithHeartbeat(testHeartbeat))
		}()
		select {
		case err := <-done:
			if !errors.Is(err, sendErr) {
				t.Errorf("Watch = %v, want the send error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not end on a send error")
		}
		closeLog(l)
		s.wantEnd(t, ErrClosed)
		if err := l.Append(context.Background(), makeEvents(t, 1, "TOPUP.SETTLED", "")); !errors.Is(err, ErrClosed) {
			t.Errorf("Append after Close = %v", err)
		}
		if err := l.Watch(context.Background(), Filter{}, "", func(Message) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Errorf("Watch after Close = %v", err)
		}
	})
}

// Two gateway replicas on one external NATS share the log: an event
// appended through one reaches a subscriber of the other.
func TestReplicasShareLog(t *testing.T) {
	url := os.Getenv("GATEWAY_NATS_URL")
	if url == "" {
		t.Skip("GATEWAY_NATS_URL not set")
	}
	be := eventstest.Backend{Name: "external", URL: url}
	cfg := backendConfig(t, be)
	a, b := openLog(t, cfg), openLog(t, cfg)
	ag := uuid.NewString()
	s := startWatch(t, b, Filter{Families: []string{FamilyDirectDebit, FamilyWithdrawal}, AccountGroupID: ag}, "")

	want := makeEvents(t, 3, "DIRECT_DEBIT.NEW", ag)
	mustAppend(t, a, slices.Concat(want[:1], makeEvents(t, 1, "TOPUP.SETTLED", ag), want[1:]))
	mustAppend(t, b, want) // the same delivery reaching the other replica
	got := s.events(t, 3)
	equalIDs(t, msgIDs(got), ids(want))
	s.quiet(t, 300*time.Millisecond)
	// A token issued by one replica resumes on the other.
	r := startWatch(t, a, Filter{Families: []string{FamilyDirectDebit, FamilyWithdrawal}, AccountGroupID: ag}, got[0].Token)
	equalIDs(t, msgIDs(r.events(t, 2)), ids(want[1:]))
	r.quiet(t, 200*time.Millisecond)
}
