package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrStorage wraps a failed fsync of the embedded server's files. It is
// sticky: once an fsync has failed, the kernel may have dropped the dirty
// pages it could not write, so a later fsync that succeeds proves nothing.
// Every later Sync fails too, until the process restarts and the server
// recovers its files from what is on disk.
var ErrStorage = errors.New("broker: the embedded NATS server's storage could not be synced to disk")

// recentWrite is how far back from the start of the previous pass a file's
// modification time still makes it a candidate even when its size, inode
// and time stamp look unchanged: file systems keep coarse time stamps (a
// clock tick), so a write that lands just after the previous pass looked at
// a file may leave them all as they were, if it overwrites in place. The
// file store appends to its block files (their size changes) and replaces
// its other files whole (a new inode), so this is a margin, kept short:
// every file in it is synced again on every pass.
const recentWrite = time.Second

// storeSyncer makes the embedded server's acknowledged writes durable:
// group commit for JetStream's file store.
//
// With GroupCommit the server writes every message to its block file (an
// ordinary write: the operating system has it, so a crash of the process
// loses nothing) before it acknowledges the publish, but does not fsync.
// A writer that promises durability calls Sync after its acknowledgements:
// callers that arrive while a pass runs wait for the next one, which starts
// after their writes and covers all of them, so concurrent deliveries share
// one fsync pass instead of paying one fsync per message.
//
// A pass walks the server's store directory and fsyncs every file and
// directory that changed since the previous pass (new size, inode or
// modification time; directories change when a block file is created or
// removed): a stat per file, a listing only of directories that changed. It needs no knowledge of the file store's layout beyond "under
// StoreDir/jetstream", so it keeps working when NATS reorganises its files.
type storeSyncer struct {
	root  string
	fsync func(path string) error // fsyncPath; tests watch it

	mu      sync.Mutex
	waiting []chan error // callers the next pass answers
	running bool
	failed  error // sticky: see ErrStorage

	// synced is when the last completed pass started: every write
	// acknowledged before it is durable. Guarded by mu.
	synced time.Time

	// Owned by the pass loop.
	passStart time.Time
	seen      map[string]fileVersion
	listings  map[string]dirListing
}

// fileVersion is what tells whether a file changed since the last pass.
type fileVersion struct {
	ino     uint64
	size    int64
	modTime time.Time
}

func newStoreSyncer(root string) *storeSyncer {
	return &storeSyncer{root: root, fsync: fsyncPath, seen: map[string]fileVersion{}, listings: map[string]dirListing{}}
}

// sync waits for a pass that starts after the call, or for ctx.
func (s *storeSyncer) sync(ctx context.Context) error {
	done := make(chan error, 1)
	s.mu.Lock()
	if s.failed != nil {
		s.mu.Unlock()
		return s.failed
	}
	s.waiting = append(s.waiting, done)
	if !s.running {
		s.running = true
		go s.loop()
	}
	s.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the store to sync: %w", ErrUnavailable, ctx.Err())
	}
}

// loop runs passes while callers wait; it exits when none is left, so an
// idle broker has no goroutine for it.
func (s *storeSyncer) loop() {
	for {
		s.mu.Lock()
		group := s.waiting
		s.waiting = nil
		if len(group) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		failed := s.failed
		s.mu.Unlock()

		err := failed
		if err == nil {
			start := time.Now()
			err = s.pass()
			s.mu.Lock()
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrStorage, err)
				s.failed = err
			} else {
				s.synced = start
			}
			s.mu.Unlock()
		}
		for _, done := range group {
			done <- err
		}
	}
}

// durableAt reports whether every write acknowledged by t is durable: a
// pass that started after t has completed.
func (s *storeSyncer) durableAt(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed == nil && s.synced.After(t)
}

// pass fsyncs what changed under root since the previous pass.
func (s *storeSyncer) pass() error {
	start := time.Now()
	w := storeWalk{
		since:    s.passStart.Add(-recentWrite),
		prev:     s.seen,
		seen:     make(map[string]fileVersion, len(s.seen)),
		listings: s.listings,
		fsync:    s.fsync,
	}
	if err := w.visit(s.root); err != nil {
		return err
	}
	// Listings of directories that are gone are dropped with the next
	// pass's map.
	s.listings = make(map[string]dirListing, len(w.seen))
	for path, v := range w.seen {
		if l, ok := w.listings[path]; ok && l.version == v {
			s.listings[path] = l
		}
	}
	s.seen, s.passStart = w.seen, start
	return nil
}

// dirListing is a directory's entries as read when it had version.
type dirListing struct {
	version fileVersion
	names   []string
}

// storeWalk is one pass over the store.
type storeWalk struct {
	since      time.Time
	prev, seen map[string]fileVersion
	listings   map[string]dirListing
	fsync      func(path string) error
}

// visit syncs path if it changed, and walks into it if it is a directory.
// A directory's listing is read again only when the directory changed
// (entries created, removed or renamed change its time stamp); a stat per
// entry is what finds the files that were written.
func (w *storeWalk) visit(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile (a deleted block, a rename): nothing to keep
	} else if err != nil {
		return err
	}
	v := fileVersion{size: info.Size(), modTime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		v.ino = st.Ino
	}
	w.seen[path] = v
	prev, known := w.prev[path]
	changed := !known || prev != v || !v.modTime.Before(w.since)
	if changed {
		if err := w.fsync(path); err != nil {
			return err
		}
	}
	if !info.IsDir() {
		return nil
	}
	l, listed := w.listings[path]
	if !listed || l.version != v || changed {
		names, err := readDirNames(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		l = dirListing{version: v, names: names}
		w.listings[path] = l
	}
	for _, name := range l.names {
		if err := w.visit(filepath.Join(path, name)); err != nil {
			return err
		}
	}
	return nil
}

func readDirNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// fsyncPath fsyncs a file or a directory. fsync acts on the file, not on
// the descriptor, so it flushes what the server wrote through its own.
func fsyncPath(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
