package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// recorder is an fsync that records what it was asked to sync.
type recorder struct {
	mu    sync.Mutex
	paths []string
	err   error
}

func (r *recorder) fsync(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, path)
	return r.err
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.paths
	r.paths = nil
	slices.Sort(p)
	return p
}

// A pass syncs everything at first, then only what changed: a file whose
// size changed even with its old modification time, a file created (and
// its directory), and nothing that stayed as it was.
func TestStoreSyncerSyncsWhatChanged(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sub := filepath.Join(root, "msgs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(sub, "1.blk"), filepath.Join(root, "meta.inf")
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	age := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	age(a, b, sub, root)

	rec := &recorder{}
	s := newStoreSyncer(root)
	s.fsync = rec.fsync
	// The first pass after an hour of quiet, as if the previous one were
	// long ago, so that only changes count.
	pass := func() []string {
		t.Helper()
		if err := s.pass(); err != nil {
			t.Fatal(err)
		}
		s.passStart = time.Now().Add(-2 * recentWrite)
		return rec.take()
	}
	if got, want := pass(), []string{root, b, sub, a}; !slices.Equal(got, sortedCopy(want)) {
		t.Fatalf("first pass synced %v, want everything %v", got, want)
	}
	if got := pass(); len(got) != 0 {
		t.Fatalf("nothing changed, but %v synced", got)
	}

	// An append that keeps the old time stamp still changes the size.
	f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("more"))
	f.Close()
	age(a)
	if got, want := pass(), []string{a}; !slices.Equal(got, want) {
		t.Fatalf("after an append synced %v, want %v", got, want)
	}

	// A new block: the file and the directory that now lists it.
	c := filepath.Join(sub, "2.blk")
	if err := os.WriteFile(c, []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := pass(), sortedCopy([]string{sub, c}); !slices.Equal(got, want) {
		t.Fatalf("after a new file synced %v, want %v", got, want)
	}

	// A file written since the previous pass started is synced even when
	// nothing else about it changed (same size, coarse time stamps).
	s.passStart = time.Now()
	if got := rec.take(); len(got) != 0 {
		t.Fatal(got)
	}
	if err := s.pass(); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); !slices.Contains(got, c) {
		t.Fatalf("a file modified just before the previous pass was not synced: %v", got)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// A failed fsync fails that Sync and every later one: the kernel may have
// dropped the pages it could not write.
func TestStoreSyncerFailureSticks(t *testing.T) {
	t.Parallel()
	rec := &recorder{err: errors.New("EIO")}
	s := newStoreSyncer(t.TempDir())
	s.fsync = rec.fsync
	if err := s.sync(context.Background()); !errors.Is(err, ErrStorage) {
		t.Fatalf("sync = %v, want ErrStorage", err)
	}
	rec.err = nil
	if err := s.sync(context.Background()); !errors.Is(err, ErrStorage) {
		t.Fatalf("sync after a failure = %v, want ErrStorage", err)
	}
}

// Concurrent callers share passes: many callers, few passes, and each
// caller's pass started after it called.
func TestStoreSyncerGroupsCallers(t *testing.T) {
	t.Parallel()
	var passes atomic.Int32
	release := make(chan struct{})
	s := newStoreSyncer(t.TempDir())
	s.fsync = func(string) error {
		if passes.Add(1) == 1 {
			<-release // the first pass is slow: the others queue behind it
		}
		return nil
	}
	first := make(chan error, 1)
	go func() { first <- s.sync(context.Background()) }()
	for passes.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	const callers = 50
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if err := s.sync(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	// Every caller is queued (a pass syncs one path: the empty root).
	for {
		s.mu.Lock()
		n := len(s.waiting)
		s.mu.Unlock()
		if n == callers {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := passes.Load(); n != 2 {
		t.Errorf("%d passes for %d callers queued behind one, want 2", n, callers)
	}
}

// Sync on an embedded broker with GroupCommit syncs its store; it is a
// no-op elsewhere; SyncAlways and GroupCommit exclude each other.
func TestSyncModes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Open(ctx, Config{DataDir: t.TempDir(), SyncAlways: true, GroupCommit: true}); err == nil {
		t.Fatal("Open with SyncAlways and GroupCommit succeeded")
	}
	for _, cfg := range []Config{{GroupCommit: true}, {SyncAlways: true}, {}} {
		cfg.DataDir = t.TempDir()
		b, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.JetStream().Publish(ctx, "t.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Errorf("%+v: Sync = %v", cfg, err)
		}
		if (b.store != nil) != cfg.GroupCommit {
			t.Errorf("%+v: store syncer %v", cfg, b.store != nil)
		}
		b.Close()
		if err := b.Sync(ctx); cfg.GroupCommit && !errors.Is(err, ErrUnavailable) {
			t.Errorf("Sync after Close = %v", err)
		}
	}
}

// The pass after an acknowledged publish syncs the file that holds the
// message (and whatever else changed), wherever the server keeps it.
func TestSyncCoversAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{DataDir: t.TempDir(), GroupCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec := &recorder{}
	b.store.fsync = func(path string) error {
		rec.fsync(path)
		return fsyncPath(path)
	}
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rec.take()
	for i := range 3 {
		marker := fmt.Sprintf("acknowledged-%d-%d", i, time.Now().UnixNano())
		if _, err := b.JetStream().Publish(ctx, "t.x", []byte(marker)); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		var holder string
		for _, p := range rec.take() {
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(marker)) {
				holder = p
			}
		}
		if holder == "" {
			t.Fatalf("publish %d: no synced file holds the message", i)
		}
	}
}
