package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
)

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// logSetup is where a test's log lives and how it is configured.
type logSetup struct {
	broker broker.Config
	LogConfig
}

// backendConfig returns a fresh log configuration on be: its own data
// directory, and on the external server its own stream and subject prefix,
// so that parallel tests and parallel CI runs never see each other's events.
func backendConfig(t *testing.T, be eventstest.Backend) logSetup {
	t.Helper()
	sfx := randomSuffix()
	cfg := logSetup{
		broker: broker.Config{URL: be.URL},
		LogConfig: LogConfig{
			Stream:  "EVENTS_TEST_" + sfx,
			Subject: "test" + sfx + ".events",
		},
	}
	if be.URL == "" {
		// As the gateway runs it by default: durable by group commit.
		cfg.broker.DataDir, cfg.broker.GroupCommit = t.TempDir(), true
	} else {
		t.Cleanup(func() { deleteStream(t, be.URL, cfg.Stream) })
	}
	return cfg
}

func deleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Logf("cleanup: deleting stream %s: %v", stream, err)
	}
}

// openBackend opens a log with a fresh configuration on be, as mutate
// changes it.
func openBackend(t *testing.T, be eventstest.Backend, mutate ...func(*LogConfig)) *Log {
	t.Helper()
	cfg := backendConfig(t, be)
	for _, m := range mutate {
		m(&cfg.LogConfig)
	}
	return openLog(t, cfg)
}

// forEachCatchUp runs fn on each backend once per way a subscriber catches
// up: from the recent events the tail keeps in memory (the default), and
// from the log with a consumer of its own (none kept in memory).
func forEachCatchUp(t *testing.T, fn func(t *testing.T, open func(mutate ...func(*LogConfig)) *Log)) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		for _, path := range []struct {
			name string
			opts []LogOption
		}{{"memory", nil}, {"log", []LogOption{WithRecentEvents(0)}}} {
			t.Run("from "+path.name, func(t *testing.T) {
				fn(t, func(mutate ...func(*LogConfig)) *Log {
					t.Helper()
					cfg := backendConfig(t, be)
					for _, m := range mutate {
						m(&cfg.LogConfig)
					}
					return openLogWith(t, cfg, path.opts...)
				})
			})
		}
	})
}

// openLog opens a broker and a log on it; closeLog (or the test's end)
// closes both.
func openLog(t testing.TB, cfg logSetup) *Log {
	t.Helper()
	return openLogWith(t, cfg)
}

// openLogWith is openLog with options.
func openLogWith(t testing.TB, cfg logSetup, opts ...LogOption) *Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg.broker, broker.WithLogger(logtest.Logger(t)))
	if err != nil {
		t.Fatalf("broker.Open: %v", err)
	}
	l, err := Open(ctx, b, cfg.LogConfig, append([]LogOption{WithLogger(logtest.Logger(t))}, opts...)...)
	if err != nil {
		b.Close()
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { closeLog(l) })
	return l
}

// closeLog closes l and its broker, as a gateway that stops does.
func closeLog(l *Log) {
	l.Close()
	l.broker.Close()
}

// storedCount is how many messages the stream holds.
func storedCount(t *testing.T, l *Log) uint64 {
	t.Helper()
	info, err := l.streamInfo(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// rawEvent builds an upstream event as JSON.
func rawEvent(typ, accountGroup string) map[string]any {
	obj := map[string]any{"id": uuid.NewString(), "status": "X"}
	if accountGroup != "" {
		obj["account_group_id"] = accountGroup
	}
	return eventstest.RawEvent(typ, time.Now(), obj)
}

// makeEvents returns n parsed events of the given type and account group.
func makeEvents(t testing.TB, n int, typ, ag string) []Event {
	t.Helper()
	evs := make([]Event, n)
	for i := range evs {
		raw, err := json.Marshal(rawEvent(typ, ag))
		if err != nil {
			t.Fatal(err)
		}
		if evs[i], err = ParseEvent(raw); err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

func mustAppend(t testing.TB, l *Log, evs []Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Append(ctx, evs); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// sub is a running Watch whose messages arrive on msgs.
type sub struct {
	msgs   chan Message
	done   chan error
	cancel context.CancelFunc
}

const testHeartbeat = 100 * time.Millisecond

// startWatch runs Watch and waits for its first message, the heartbeat that
// says the subscription is in place.
func startWatch(t *testing.T, l *Log, f Filter, token string, opts ...WatchOption) *sub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &sub{msgs: make(chan Message, 10000), done: make(chan error, 1), cancel: cancel}
	opts = append([]WatchOption{WithHeartbeat(testHeartbeat)}, opts...)
	go func() {
		s.done <- l.Watch(ctx, f, token, func(m Message) error {
			select {
			case s.msgs <- m:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, opts...)
	}()
	t.Cleanup(cancel)
	select {
	case m := <-s.msgs:
		if m.Event != nil || m.Token == "" {
			t.Fatalf("first message = %+v, want a heartbeat with a token", m)
		}
	case err := <-s.done:
		t.Fatalf("Watch ended before its first heartbeat: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no first heartbeat")
	}
	return s
}

// events collects n events (skipping heartbeats), failing on timeout.
func (s *sub) events(t *testing.T, n int) []Message {
	t.Helper()
	var out []Message
	deadline := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case m := <-s.msgs:
			if m.Event != nil {
				out = append(out, m)
			}
		case err := <-s.done:
			t.Fatalf("Watch ended after %d of %d events: %v", len(out), n, err)
		case <-deadline:
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

// quiet fails if an event arrives within d.
func (s *sub) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-s.msgs:
			if m.Event != nil {
				t.Fatalf("unexpected event %s %s", m.Event.Type, m.Event.ID)
			}
		case err := <-s.done:
			t.Fatalf("Watch ended: %v", err)
		case <-deadline:
			return
		}
	}
}

// heartbeat waits for the next heartbeat, failing on an event.
func (s *sub) heartbeat(t *testing.T) Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-s.msgs:
			if m.Event != nil {
				t.Fatalf("unexpected event %s %s", m.Event.Type, m.Event.ID)
			}
			return m
		case err := <-s.done:
			t.Fatalf("Watch ended: %v", err)
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}
}

// stop cancels the Watch and waits for it to return.
func (s *sub) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func (s *sub) wantEnd(t *testing.T, want error) {
	t.Helper()
	select {
	case err := <-s.done:
		if !errors.Is(err, want) {
			t.Fatalf("Watch = %v, want %v", err, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("Watch did not end with %v", want)
	}
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}

func msgIDs(ms []Message) []string {
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = ms[i].Event.ID
	}
	return out
}

func equalIDs(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func tokenSeq(t *testing.T, tok string) uint64 {
	t.Helper()
	p, err := decodeToken(tok)
	if err != nil {
		t.Fatalf("decoding token %q: %v", tok, err)
	}
	return p.seq
}

// mustSubjects is f's exact subjects on l.
func mustSubjects(t *testing.T, l *Log, f Filter) []string {
	t.Helper()
	s, err := f.Subjects(l.cfg.Subject)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
