package reloadfile

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, the files are looked at.
const DefaultCheckInterval = time.Second

// MaxFileBytes caps each file: certificates, key sets and policies are a few
// kilobytes, a CA bundle a few hundred.
const MaxFileBytes = 4 << 20

// Parse turns the contents of the files, in the order they were named, into
// a value. Its error must not quote the contents: they may be key material.
type Parse[T any] func(contents [][]byte) (T, error)

// Value is a value parsed from files and re-parsed when they change. It is
// safe for concurrent use.
type Value[T any] struct {
	paths    []string
	parse    Parse[T]
	interval time.Duration
	report   func(error)
	reloaded func()
	now      func() time.Time

	current   atomic.Pointer[T]
	lastCheck atomic.Int64 // unix nanoseconds of the last look at the files

	mu     sync.Mutex // one reader of the files at a time
	digest [sha256.Size]byte
}

// New reads and parses the files once; an error there is returned, since
// there is no earlier value to keep.
func New[T any](parse Parse[T], paths []string, opts ...Option) (*Value[T], error) {
	if len(paths) == 0 {
		return nil, errors.New("reloadfile: no file named")
	}
	o := options{interval: DefaultCheckInterval, now: time.Now}
	for _, opt := range opts {
		if opt != nil {
			opt.applyValue(&o)
		}
	}
	v := &Value[T]{
		paths:    append([]string(nil), paths...),
		parse:    parse,
		interval: o.interval,
		report:   o.report,
		reloaded: o.reloaded,
		now:      o.now,
	}
	contents, digest, err := v.read()
	if err != nil {
		return nil, err
	}
	val, err := parse(contents)
	if err != nil {
		return nil, err
	}
	v.digest = digest
	v.current.Store(&val)
	v.lastCheck.Store(v.now().UnixNano())
	return v, nil
}

// Get returns the current value, first re-reading the files when the check
// interval has passed since the last look. A concurrent caller that finds
// another one reading gets the current value rather than waiting.
func (v *Value[T]) Get() T {
	if v.now().UnixNano()-v.lastCheck.Load() >= int64(v.interval) && v.mu.TryLock() {
		// Errors are reported inside; the last good value stays.
		_, _ = v.checkLocked()
		v.mu.Unlock()
	}
	return *v.current.Load()
}

// Reload reads the files now, whatever the interval. It returns whether a
// new value was taken, and the error that kept the old one, if any. Content
// seen before (good or bad) is not parsed again.
func (v *Value[T]) Reload() (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checkLocked()
}

// Current returns the current value without looking at the files.
func (v *Value[T]) Current() T { return *v.current.Load() }

func (v *Value[T]) checkLocked() (bool, error) {
	v.lastCheck.Store(v.now().UnixNano())
	contents, digest, err := v.read()
	if err != nil {
		// A file being replaced may be missing for a moment: keep the value,
		// report, and look again after the interval.
		v.fail(err)
		return false, err
	}
	if digest == v.digest {
		return false, nil
	}
	// Remember bad content too, so it is reported once, not every interval.
	v.digest = digest
	val, err := v.parse(contents)
	if err != nil {
		v.fail(err)
		return false, err
	}
	v.current.Store(&val)
	if v.reloaded != nil {
		v.reloaded()
	}
	return true, nil
}

func (v *Value[T]) fail(err error) {
	if v.report != nil {
		v.report(err)
	}
}

// read returns the files' contents and one digest over all of them.
func (v *Value[T]) read() ([][]byte, [sha256.Size]byte, error) {
	h := sha256.New()
	contents := make([][]byte, len(v.paths))
	for i, p := range v.paths {
		b, err := readCapped(p)
		if err != nil {
			return nil, [sha256.Size]byte{}, err
		}
		contents[i] = b
		// Length-prefixed, so that moving bytes between files changes the digest.
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return contents, d, nil
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // names the path and the cause, never content
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileBytes)
	}
	return b, nil
}
