package events

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
)

// slowDisk is an fsync that waits while held, or fails once broken.
type slowDisk struct {
	held   atomic.Bool
	broken atomic.Bool
	waits  atomic.Int32
}

func (d *slowDisk) fsync(path string) error {
	for d.held.Load() {
		d.waits.Add(1)
		time.Sleep(time.Millisecond)
	}
	if d.broken.Load() {
		return syscall.EIO
	}
	return nil
}

// openOnDisk opens an embedded log, durable by group commit, on d.
func openOnDisk(t *testing.T, d *slowDisk) *Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := backendConfig(t, eventstest.Backend{Name: "embedded"})
	b, err := broker.Open(ctx, cfg.broker, broker.WithFsync(d.fsync))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, b, cfg.LogConfig, WithLogger(logtest.Logger(t)))
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLog(l) })
	return l
}

// A subscriber never gets an event that is not yet durable: with group
// commit the tail can read a message before the sync that makes it
// durable has passed, and holds it until then. Append returns at the same
// point.
func TestSubscribersGetOnlyDurableEvents(t *testing.T) {
	t.Parallel()
	d := &slowDisk{}
	l := openOnDisk(t, d)
	s := startWatch(t, l, Filter{}, "")

	d.held.Store(true)
	evs := makeEvents(t, 3, "TOPUP.SETTLED", "")
	appended := make(chan error, 1)
	go func() { appended <- l.Append(context.Background(), evs) }()
	waitFor(t, "the sync to start", func() bool { return d.waits.Load() > 0 })
	waitFor(t, "the tail to read the events", func() bool { return consumerDeliveredTo(t, l) >= 3 })
	s.quiet(t, 300*time.Millisecond)
	select {
	case err := <-appended:
		t.Fatalf("Append returned %v before its events were synced", err)
	default:
	}

	d.held.Store(false)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	equalIDs(t, msgIDs(s.events(t, 3)), ids(evs))
}

// A disk that fails to sync fails Append (ErrUnavailable, so Upvest
// retries), the readiness check, and every Append after it: the kernel may
// have dropped what it could not write. Subscribers are ended rather than
// given events that may not be on disk.
func TestStorageFailure(t *testing.T) {
	t.Parallel()
	d := &slowDisk{}
	l := openOnDisk(t, d)
	s := startWatch(t, l, Filter{}, "")
	d.broken.Store(true)
	err := l.Append(context.Background(), makeEvents(t, 1, "TOPUP.SETTLED", ""))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, broker.ErrStorage) {
		t.Fatalf("Append on a failing disk = %v, want ErrUnavailable wrapping broker.ErrStorage", err)
	}
	d.broken.Store(false)
	if err := l.Append(context.Background(), makeEvents(t, 1, "TOPUP.SETTLED", "")); !errors.Is(err, broker.ErrStorage) {
		t.Fatalf("Append after the disk failed once = %v, want ErrStorage", err)
	}
	if err := l.Check(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check = %v, want ErrUnavailable", err)
	}
	s.wantEnd(t, ErrUnavailable)

	// The quarantine shares the broker, and its promise: a record added is
	// on disk, or Add fails.
	q, err := OpenQuarantine(context.Background(), l.broker, l.cfg)
	if err == nil {
		err = q.Add(context.Background(), NewQuarantinedEvent([]byte(`{"id":"x"}`), 0, "payload[0].id: not a UUID"))
	}
	if !errors.Is(err, broker.ErrStorage) {
		t.Fatalf("the quarantine on a failing disk: %v, want ErrStorage", err)
	}
}

// Adding to the quarantine returns once the records are on disk, as Append
// does: a delivery answered 200 because its events were quarantined keeps
// them through a power loss.
func TestQuarantineAddIsDurable(t *testing.T) {
	t.Parallel()
	d := &slowDisk{}
	l := openOnDisk(t, d)
	q, err := OpenQuarantine(context.Background(), l.broker, l.cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.held.Store(true)
	added := make(chan error, 1)
	go func() {
		added <- q.Add(context.Background(), NewQuarantinedEvent([]byte(`{"id":"x"}`), 0, "payload[0].id: not a UUID"))
	}()
	waitFor(t, "the sync to start", func() bool { return d.waits.Load() > 0 })
	select {
	case err := <-added:
		t.Fatalf("Add returned %v before its records were synced", err)
	case <-time.After(200 * time.Millisecond):
	}
	d.held.Store(false)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
}

// consumerDeliveredTo is the highest stream sequence any consumer of l's
// stream has been delivered.
func consumerDeliveredTo(t *testing.T, l *Log) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := l.js.Stream(ctx, l.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var most uint64
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		most = max(most, ci.Delivered.Stream)
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return most
}
