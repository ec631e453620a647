package idempotency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Do runs the request under key at most once across every Store on the
// bucket, as far as its outcome is known, and returns the outcome every
// caller of key gets.
//
// fingerprint identifies the request (e.g. the method and the canonical
// bytes of the request, without its request_id); only its hash is stored.
// A key already used with another fingerprint fails with
// ErrFingerprintMismatch without calling run.
//
// run does the request. It returns the outcome as bytes the caller can
// decode again (the response, or a definitive error), and final, whether
// that outcome is the request's answer for good. A final outcome (final true
// and err nil) is recorded and replayed to every later caller of key. Any
// other return (final false, or err not nil: the connection dropped after
// sending, a 504, a deadline) releases the key, keeping its fingerprint, so
// the next caller with the same request runs it again at once; Do then
// returns run's outcome with err as it is, not wrapped.
//
// A key in flight under another owner (here or on another replica) is
// waited for, until its outcome is recorded (returned with Source Waited),
// it is released or its owner's lease expires (run is called here, Source
// TookOver), or ctx ends (an error wrapping ErrInProgress and ctx's error).
//
// Do does not run the request when the store cannot be reached: it returns
// an error wrapping ErrUnavailable (or ctx's error, when ctx ended first).
func (s *Store) Do(ctx context.Context, key string, fingerprint []byte,
	run func(ctx context.Context) (outcome []byte, final bool, err error),
) (Result, error) {
	k, err := kvKey(key)
	if err != nil {
		return Result{}, err
	}
	if !s.js.Conn().IsConnected() {
		// Fail at once rather than after RequestTimeout while NATS is away.
		return Result{}, fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	fp := fingerprintHash(fingerprint)
	inFlight := s.inFlight(fp)
	var (
		create = true // whether the key may be absent
		waited bool
		races  int // compare-and-sets lost in a row
	)
	fail := func(what string, err error) error {
		if waited && ctx.Err() != nil {
			// The key was seen in flight: its outcome may still come.
			return fmt.Errorf("%w: %w", ErrInProgress, ctx.Err())
		}
		return s.failure(ctx, what, err)
	}
	for {
		if err := pause(ctx, races); err != nil {
			return Result{}, fail("retrying", err)
		}
		if create {
			rev, unclaim, err := s.acquire(ctx, k, inFlight, 0)
			if err == nil {
				return s.own(ctx, k, fp, rev, unclaim, run, Ran)
			}
			if !isConflict(err) {
				return Result{}, fail("creating entry", err)
			}
		}
		e, err := s.get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			// Expired since, or a stale read: try to create it again.
			create, races = true, races+1
			continue
		}
		if err != nil {
			return Result{}, fail("reading entry", err)
		}
		rec, err := decodeRecord(e.Value())
		if err != nil {
			return Result{}, fmt.Errorf("%w (key %q)", err, key)
		}
		if !bytes.Equal(rec.Fingerprint, fp) {
			s.stats.conflicts.Add(1)
			return Result{}, ErrFingerprintMismatch
		}
		create = false
		takeOverAt, why := uint64(0), ""
		switch {
		case rec.State == stateDone:
			s.forget(k)
			if waited {
				return Result{Outcome: rec.Outcome, Source: Waited}, nil
			}
			s.stats.replays.Add(1)
			return Result{Outcome: rec.Outcome, Source: Replayed}, nil
		case rec.State == stateReleased:
			takeOverAt, why = e.Revision(), "released"
		case rec.Owner == s.owner && !s.claimed(k):
			// In flight under this Store, which runs nothing under it: a
			// write whose answer was lost (NATS went away) and that NATS
			// applied anyway. No need to wait for the lease.
			takeOverAt, why = e.Revision(), "orphaned by a lost write"
		default:
			if !waited {
				waited = true
				s.stats.waits.Add(1)
			}
			expired, err := s.wait(ctx, k, fp, e.Revision(), rec)
			if err != nil {
				return Result{}, fail("waiting", err)
			}
			if expired == 0 {
				races = 0
				continue
			}
			takeOverAt, why = expired, "lease expired"
		}
		rev, unclaim, err := s.acquire(ctx, k, inFlight, takeOverAt)
		if isConflict(err) {
			races++
			continue
		}
		if err != nil {
			return Result{}, fail("taking over entry", err)
		}
		s.stats.takeovers.Add(1)
		s.logger.Info("idempotency: taking over a request without a known outcome", "key", k, "why", why)
		return s.own(ctx, k, fp, rev, unclaim, run, TookOver)
	}
}

// acquire makes this Store the owner of k by compare-and-set on rev (0:
// only if k is absent). From before the write until unclaim is called, this
// Store's other Do calls know it may own k, and so never take its entry
// for an orphan.
func (s *Store) acquire(ctx context.Context, k string, inFlight []byte, rev uint64) (uint64, func(), error) {
	unclaim := s.claim(k)
	var err error
	if rev == 0 {
		rev, err = s.create(ctx, k, inFlight)
	} else {
		rev, err = s.update(ctx, k, inFlight, rev)
	}
	if err != nil {
		unclaim()
		return 0, nil, err
	}
	return rev, unclaim, nil
}

func (s *Store) claim(k string) (unclaim func()) {
	s.mu.Lock()
	s.claims[k]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.claims[k]--; s.claims[k] == 0 {
			delete(s.claims, k)
		}
		s.mu.Unlock()
	}
}

func (s *Store) claimed(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims[k] > 0
}

// own runs the request while holding the entry at rev, then records the
// outcome or releases the entry, and only then unclaims it.
func (s *Store) own(ctx context.Context, k string, fp []byte, rev uint64, unclaim func(),
	run func(context.Context) ([]byte, bool, error), src Source,
) (Result, error) {
	defer unclaim()
	s.forget(k)
	s.stats.runs.Add(1)
	l := s.hold(k, fp, rev)
	returned := false
	defer func() {
		if !returned {
			// run panicked: whether it reached upstream is unknown.
			s.release(ctx, k, fp, l)
		}
	}()
	outcome, final, err := run(ctx)
	returned = true
	if err != nil || !final {
		s.release(ctx, k, fp, l)
		return Result{Outcome: outcome, Source: src}, err
	}
	return s.finish(ctx, k, fp, l, outcome, src), nil
}

// finishAttempts bounds the compare-and-sets finish makes against other
// writers of the entry.
const finishAttempts = 8

// finish records a final outcome. The first final outcome recorded under a
// key wins: if another owner took the entry over meanwhile, this one is
// written over its in-flight (or released) entry, but never over an outcome
// it already recorded; then that outcome is returned instead of this one,
// so every caller gets the same answer.
func (s *Store) finish(ctx context.Context, k string, fp []byte, l *lease, outcome []byte, src Source) Result {
	rev, _ := l.end()
	done := record{Version: recordVersion, State: stateDone, Fingerprint: fp, Outcome: outcome}.encode()
	// The request has run: its outcome is recorded even if the caller has
	// gone meanwhile.
	ctx = context.WithoutCancel(ctx)
	var err error
	for range finishAttempts {
		if rev == 0 {
			_, err = s.create(ctx, k, done)
		} else {
			_, err = s.update(ctx, k, done, rev)
		}
		if err == nil {
			return Result{Outcome: outcome, Source: src}
		}
		if !isConflict(err) {
			break
		}
		var e jetstream.KeyValueEntry
		e, err = s.get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			rev = 0
			continue
		}
		if err != nil {
			break
		}
		rec, derr := decodeRecord(e.Value())
		if derr != nil || !bytes.Equal(rec.Fingerprint, fp) {
			// Not this request's entry any more (it expired and the key was
			// reused): nothing of ours to record into.
			err = errors.New("the key now holds another request")
			break
		}
		if rec.State == stateDone {
			return Result{Outcome: rec.Outcome, Source: Waited}
		}
		rev = e.Revision()
	}
	s.stats.unrecorded.Add(1)
	s.logger.Warn("idempotency: could not record an outcome; a retry of this key will run again", "key", k, "err", err)
	return Result{Outcome: outcome, Source: src}
}

// release marks the entry as having no known outcome, unless another owner
// holds it by now. If the write fails, the lease expires instead.
func (s *Store) release(ctx context.Context, k string, fp []byte, l *lease) {
	rev, lost := l.end()
	if lost {
		return
	}
	released := record{Version: recordVersion, State: stateReleased, Fingerprint: fp}.encode()
	if _, err := s.update(context.WithoutCancel(ctx), k, released, rev); err != nil {
		s.logger.Warn("idempotency: could not release a request; its lease will expire", "key", k, "err", err)
	}
}

func (s *Store) inFlight(fp []byte) []byte {
	return record{
		Version:     recordVersion,
		State:       stateInFlight,
		Fingerprint: fp,
		Owner:       s.owner,
		LeaseMillis: s.cfg.Lease.Milliseconds(),
	}.encode()
}

// The bucket's operations, each bounded by RequestTimeout.

func (s *Store) create(ctx context.Context, k string, v []byte) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	return s.kv.Create(ctx, k, v)
}

func (s *Store) update(ctx context.Context, k string, v []byte, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	return s.kv.Update(ctx, k, v, rev)
}

func (s *Store) get(ctx context.Context, k string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	return s.kv.Get(ctx, k)
}

// isConflict reports a lost compare-and-set: the entry is not at the
// revision the write expected.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// failure is the error of a failed operation on the bucket: ctx's own error
// when the caller's context ended, else ErrUnavailable. The cause is kept as
// text only, so that a request timeout inside the store is not mistaken for
// the caller's deadline.
func (s *Store) failure(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("idempotency: %s: %w", what, ctx.Err())
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
}

// pause backs off after compare-and-sets lost in a row, which on a
// replicated bucket can come from reading a follower that lags.
func pause(ctx context.Context, races int) error {
	if races < 2 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Millisecond << min(races-2, 6))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
