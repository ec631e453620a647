package events

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// Subscribers resuming from older tokens while events keep arriving catch
// up from the log and join the tail with no gap and no repeat: each gets
// exactly the events after its token, in log order.
func TestCatchUpJoinsTheTailWhileAppending(t *testing.T) {
	forEachCatchUp(t, func(t *testing.T, open func(...func(*LogConfig)) *Log) {
		l := open()
		ag := uuid.NewString()
		f := Filter{AccountGroupID: ag}
		first := startWatch(t, l, f, "")

		// Appends in the background: events of the group among others.
		var (
			mu   sync.Mutex
			want []string // of the group, in log order
		)
		stop := make(chan struct{})
		appended := make(chan struct{})
		go func() {
			defer close(appended)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mine := makeEvents(t, 2, "TOPUP.SETTLED", ag)
				batch := slices.Concat(mine[:1], makeEvents(t, 3, "TOPUP.SETTLED", uuid.NewString()), mine[1:])
				mu.Lock() // appends and want in the same order
				err := l.Append(context.Background(), batch)
				want = append(want, ids(mine)...)
				mu.Unlock()
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		got := first.events(t, 40)
		// Resume from tokens of all ages while the appends go on.
		type resumed struct {
			from int // index of the event whose token it resumes from
			sub  *sub
		}
		var subs []resumed
		for _, i := range []int{0, 5, 17, 30, 39} {
			subs = append(subs, resumed{i, startWatch(t, l, f, got[i].Token)})
		}
		time.Sleep(100 * time.Millisecond)
		close(stop)
		<-appended
		mu.Lock()
		all := slices.Clone(want)
		mu.Unlock()
		equalIDs(t, msgIDs(got), all[:40])
		for _, r := range subs {
			equalIDs(t, msgIDs(r.sub.events(t, len(all)-r.from-1)), all[r.from+1:])
			r.sub.quiet(t, 100*time.Millisecond)
		}
	})
}

// A subscriber that reads steadily but slower than a burst arrives is let
// go by the tail when its buffer fills, catches up from the log, and gets
// every event once, in order: paced, not dropped.
func TestOverflowCatchesUp(t *testing.T) {
	forEachCatchUp(t, func(t *testing.T, open func(...func(*LogConfig)) *Log) {
		l := open()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got []string
		ready := make(chan struct{})
		done := make(chan error, 1)
		var want []Event
		go func() {
			first := true
			done <- l.Watch(ctx, Filter{}, "", func(m Message) error {
				if first {
					first = false
					close(ready)
				}
				if m.Event != nil {
					got = append(got, m.Event.ID)
					time.Sleep(time.Millisecond)
					if len(got) == 300 {
						cancel()
					}
				}
				return nil
			}, WithBuffer(2), WithStallTimeout(5*time.Second))
		}()
		<-ready
		for range 6 {
			evs := makeEvents(t, 50, "CASH_BALANCE.UPDATED", "")
			mustAppend(t, l, evs)
			want = append(want, evs...)
		}
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch = %v after %d of %d events", err, len(got), len(want))
		}
		equalIDs(t, got, ids(want))
		if l.fanout.overflows.Load() == 0 {
			t.Error("the burst never filled the buffer: the test proves nothing")
		}
	})
}

// More subscribers than JetStream's default of 1,000 consumers per stream
// all get every event: they share the log's one consumer.
func TestSubscribersShareOneConsumer(t *testing.T) {
	l := openBackend(t, eventstest.Backend{Name: "embedded"})
	const n = 1100
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ag := uuid.NewString()
	got := make(chan string, n)
	var started, ended sync.WaitGroup
	for i := range n {
		f := Filter{}
		if i%2 == 1 {
			f = Filter{Families: []string{FamilyTopup}, AccountGroupID: ag}
		}
		started.Add(1)
		ended.Go(func() {
			first := true
			err := l.Watch(ctx, f, "", func(m Message) error {
				if first {
					first = false
					started.Done()
				}
				if m.Event != nil {
					got <- m.Event.ID
				}
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch = %v", err)
			}
		})
	}
	started.Wait()
	ev := makeEvents(t, 1, "TOPUP.SETTLED", ag)
	mustAppend(t, l, ev)
	for i := range n {
		select {
		case id := <-got:
			if id != ev[0].ID {
				t.Fatalf("got event %s, want %s", id, ev[0].ID)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d subscribers got the event", i, n)
		}
	}
	if c := consumerCount(t, l); c != 1 {
		t.Errorf("%d consumers for %d subscribers, want 1", c, n)
	}
	cancel()
	ended.Wait()
	if c := l.fanout.onTail(); c != 0 {
		t.Errorf("%d subscribers left on the tail after every Watch returned", c)
	}
}

// Catch-ups from the log are bounded (WithCatchUps): a resume beyond the
// limit waits, with heartbeats, until a catch-up slot frees, and then gets
// everything. (No recent events in memory here, which would serve both.)
func TestCatchUpsAreBounded(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		cfg := backendConfig(t, be)
		l := openLogWith(t, cfg, WithCatchUps(1), WithRecentEvents(0))
		s := startWatch(t, l, Filter{}, "")
		evs := makeEvents(t, 5, "TOPUP.SETTLED", "")
		mustAppend(t, l, evs)
		from := s.events(t, 5)[0].Token
		s.stop(t)

		// A catches up and blocks on its first event: it holds the slot.
		release := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		blocked := make(chan struct{})
		go func() {
			_ = l.Watch(ctx, Filter{}, from, func(m Message) error {
				if m.Event != nil {
					close(blocked)
					<-release
					return errors.New("done")
				}
				return nil
			})
		}()
		<-blocked
		b := startWatch(t, l, Filter{}, from)
		b.heartbeat(t) // waiting its turn, with heartbeats
		b.quiet(t, 300*time.Millisecond)
		close(release)
		equalIDs(t, msgIDs(b.events(t, 4)), ids(evs[1:]))
	})
}
