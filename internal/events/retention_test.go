package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// Retention (here MaxBytes) removes events a blocked subscriber has not
// reached, and the log keeps no recent events in memory, so it catches up
// from the log. Its consumer then goes on with the oldest event left; the
// subscription must end with ErrTokenExpired rather than send that event with
// a token, since resuming from it would lose the removed events silently.
func TestWatchEndsAtRetentionGap(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		cfg := backendConfig(t, be)
		cfg.MaxBytes, cfg.DuplicateWindow = 16*1024, time.Minute
		l := openLogWith(t, cfg, WithRecentEvents(0))
		ag := uuid.NewString()
		f := Filter{AccountGroupID: ag}
		release := make(chan struct{})
		out := make(chan Message, 1000)
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		first := true
		go func() {
			done <- l.Watch(ctx, f, "", func(m Message) error {
				if m.Event != nil && first {
					first = false
					<-release // the subscriber stops reading
				}
				out <- m
				return nil
			}, WithHeartbeat(3*time.Second), WithBuffer(1), WithStallTimeout(time.Minute))
		}()
		select {
		case <-out: // the first heartbeat: the subscription is in place
		case err := <-done:
			t.Fatalf("Watch ended before its first heartbeat: %v", err)
		}
		index := map[string]int{}
		for i := 0; i < 400; i++ {
			evs := makeEvents(t, 1, "TOPUP.SETTLED", ag)
			mustAppend(t, l, evs)
			index[evs[0].ID] = i
		}
		if info, err := l.streamInfo(context.Background()); err != nil || info.State.FirstSeq <= 20 {
			t.Fatalf("retention did not remove the first events: %+v %v", info, err)
		}
		time.Sleep(200 * time.Millisecond)
		close(release)

		last, lastTok := -1, ""
		sent := func(m Message) {
			if m.Event == nil {
				return
			}
			i := index[m.Event.ID]
			if i != last+1 {
				t.Fatalf("event %d sent after event %d: the events between were lost", i, last)
			}
			last, lastTok = i, m.Token
		}
		var err error
		timeout := time.After(20 * time.Second)
	loop:
		for {
			select {
			case m := <-out:
				sent(m)
			case err = <-done:
				// Watch sends before it returns, so what it sent is all in
				// out by now; select may have picked done first.
				for len(out) > 0 {
					sent(<-out)
				}
				break loop
			case <-timeout:
				t.Fatalf("Watch did not end; last event sent %d", last)
			}
		}
		if !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("Watch = %v, want ErrTokenExpired", err)
		}
		if last < 0 {
			t.Fatal("no event was sent")
		}
		// The last token handed out is before the gap, so it is expired too.
		err = l.Watch(context.Background(), f, lastTok, func(Message) error { return nil })
		if !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("resuming from the last token: %v, want ErrTokenExpired", err)
		}
	})
}

// The same subscriber with the recent events in memory (the default) loses
// nothing: it catches up from memory, every event in order, although the
// log has removed them. (Its old tokens expire all the same: resuming from
// one reads the log.)
func TestRecentEventsOutliveRetention(t *testing.T) {
	l := openBackend(t, eventstest.Backend{Name: "embedded"}, func(c *LogConfig) {
		c.MaxBytes = 16 * 1024
		c.DuplicateWindow = time.Minute
	})
	release := make(chan struct{})
	out := make(chan Message, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := true
	go func() {
		_ = l.Watch(ctx, Filter{}, "", func(m Message) error {
			if m.Event != nil && first {
				first = false
				<-release
			}
			out <- m
			return nil
		}, WithHeartbeat(time.Hour), WithBuffer(1), WithStallTimeout(time.Minute))
	}()
	<-out
	var want []Event
	for range 400 {
		evs := makeEvents(t, 1, "TOPUP.SETTLED", "")
		mustAppend(t, l, evs)
		want = append(want, evs...)
	}
	if info, err := l.streamInfo(context.Background()); err != nil || info.State.FirstSeq <= 20 {
		t.Fatalf("retention did not remove the first events: %+v %v", info, err)
	}
	close(release)
	var got []Message
	for len(got) < len(want) {
		select {
		case m := <-out:
			if m.Event != nil {
				got = append(got, m)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("got %d of %d events", len(got), len(want))
		}
	}
	equalIDs(t, msgIDs(got), ids(want))
	err := l.Watch(context.Background(), Filter{}, got[0].Token, func(Message) error { return nil })
	if !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("resuming from a token whose next events the log removed: %v, want ErrTokenExpired", err)
	}
}
