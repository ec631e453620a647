package webhook

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
)

// logSetup is where a test's event log lives and how it is configured.
type logSetup struct {
	broker broker.Config
	log    events.LogConfig
}

// backendConfig is a fresh log on be: its own data directory, and on the
// external server its own stream and subject prefix.
func backendConfig(t *testing.T, be eventstest.Backend) logSetup {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	cfg := logSetup{
		broker: broker.Config{URL: be.URL},
		log:    events.LogConfig{Stream: "WEBHOOK_TEST_" + sfx, Subject: "test" + sfx + ".events"},
	}
	if be.URL == "" {
		cfg.broker.DataDir = t.TempDir()
	} else {
		qstream, _ := events.QuarantineNames(cfg.log)
		t.Cleanup(func() {
			deleteStream(t, be.URL, cfg.log.Stream)
			deleteStream(t, be.URL, qstream)
		})
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

// testLog is an open event log, its quarantine and the broker under them.
type testLog struct {
	*events.Log
	quarantine *events.Quarantine
	broker     *broker.Broker
	stream     string
}

func (l *testLog) close() {
	l.Log.Close()
	l.broker.Close()
}

func openBackend(t *testing.T, be eventstest.Backend) *testLog {
	t.Helper()
	return openLog(t, backendConfig(t, be))
}

func openLog(t testing.TB, cfg logSetup) *testLog {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg.broker)
	if err != nil {
		t.Fatalf("broker.Open: %v", err)
	}
	l, err := events.Open(ctx, b, cfg.log, events.WithLogger(logtest.Logger(t)))
	if err != nil {
		b.Close()
		t.Fatalf("events.Open: %v", err)
	}
	q, err := events.OpenQuarantine(ctx, b, cfg.log, events.WithLogger(logtest.Logger(t)))
	if err != nil {
		b.Close()
		t.Fatalf("events.OpenQuarantine: %v", err)
	}
	tl := &testLog{Log: l, quarantine: q, broker: b, stream: l.Config().Stream}
	t.Cleanup(tl.close)
	return tl
}

// storedCount is how many messages the log's stream holds.
func storedCount(t *testing.T, l *testLog) uint64 {
	t.Helper()
	s, err := l.broker.JetStream().Stream(context.Background(), l.stream)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return s.CachedInfo().State.Msgs
}

// quarantined lists the quarantine of l.
func quarantined(t *testing.T, l *testLog) []events.QuarantinedEvent {
	t.Helper()
	recs, next, err := l.quarantine.List(context.Background(), "", 1000)
	if err != nil || next != "" {
		t.Fatalf("quarantine List: %v (next %q)", err, next)
	}
	return recs
}

// rawEvent builds an upstream event as JSON.
func rawEvent(typ, accountGroup string) map[string]any {
	obj := map[string]any{"id": uuid.NewString(), "status": "X"}
	if accountGroup != "" {
		obj["account_group_id"] = accountGroup
	}
	return eventstest.RawEvent(typ, time.Now(), obj)
}

type appenderFunc func(ctx context.Context, evs []events.Event) error

func (f appenderFunc) Append(ctx context.Context, evs []events.Event) error { return f(ctx, evs) }

// watcher collects what one Watch of the log sends.
type watcher struct {
	msgs chan events.Message
	done chan error
}

// startWatch runs a Watch and waits for its first message, the heartbeat
// that says the subscription is in place.
func startWatch(t *testing.T, l *testLog, f events.Filter) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &watcher{msgs: make(chan events.Message, 10000), done: make(chan error, 1)}
	go func() {
		w.done <- l.Watch(ctx, f, "", func(m events.Message) error {
			select {
			case w.msgs <- m:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, events.WithHeartbeat(100*time.Millisecond))
	}()
	select {
	case <-w.msgs:
	case err := <-w.done:
		t.Fatalf("Watch ended before its first heartbeat: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no first heartbeat")
	}
	return w
}

// events collects n events (skipping heartbeats), failing on timeout.
func (w *watcher) events(t *testing.T, n int) []events.Message {
	t.Helper()
	var out []events.Message
	deadline := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case m := <-w.msgs:
			if m.Event != nil {
				out = append(out, m)
			}
		case err := <-w.done:
			t.Fatalf("Watch ended after %d of %d events: %v", len(out), n, err)
		case <-deadline:
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

// quiet fails if an event arrives within d.
func (w *watcher) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-w.msgs:
			if m.Event != nil {
				t.Fatalf("unexpected event %s %s", m.Event.Type, m.Event.ID)
			}
		case err := <-w.done:
			t.Fatalf("Watch ended: %v", err)
		case <-deadline:
			return
		}
	}
}

func msgIDs(ms []events.Message) []string {
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

// keySource serves fixed keys and counts fetches.
type keySource struct {
	keys  atomic.Pointer[map[string]crypto.PublicKey]
	calls atomic.Int32
	fail  atomic.Bool
}

func newKeySource(signers ...*eventstest.WebhookSigner) *keySource {
	ks := &keySource{}
	m := map[string]crypto.PublicKey{}
	for _, s := range signers {
		m[s.KID] = s.Key.Public()
	}
	ks.keys.Store(&m)
	return ks
}

func (ks *keySource) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	ks.calls.Add(1)
	if ks.fail.Load() {
		return nil, errors.New("upstream down")
	}
	return *ks.keys.Load(), nil
}

// post sends body to url, signed by s (nil: unsigned).
func post(t *testing.T, url string, s *eventstest.WebhookSigner, body []byte) (int, string) {
	t.Helper()
	return do(t, eventstest.NewDelivery(t, url, s, body))
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("error answer Content-Type = %q", ct)
		}
	}
	return resp.StatusCode, b.String()
}
