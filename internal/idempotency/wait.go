package idempotency

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var errWatchEnded = errors.New("watch ended")

// wait blocks while the entry, last seen at rev as rec, is in flight under
// another owner. Renewals (and a new owner's entries) restart the lease
// timer; any other change returns 0, nil and the caller reads the entry
// again. When no new revision comes for a whole lease, on this process's
// clock, wait returns the revision that expired, for the caller to take
// over by compare-and-set. Its errors are the bucket's or ctx's, as they
// are: Do tells them apart.
//
// The lease runs from when this Store first saw the revision (see
// sighted), not from this call's start: callers whose deadlines are shorter
// than the lease, retrying, add up to it, rather than each starting it
// anew and never reaching its end.
func (s *Store) wait(ctx context.Context, k string, fp []byte, rev uint64, rec record) (uint64, error) {
	w, err := s.kv.Watch(ctx, k)
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	timer := time.NewTimer(rec.lease() - time.Since(s.sighted(k, rev)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return 0, errWatchEnded
			}
			if e == nil || e.Revision() <= rev {
				continue // the end of the initial values, or what was already seen
			}
			if e.Operation() != jetstream.KeyValuePut {
				return 0, nil
			}
			next, err := decodeRecord(e.Value())
			if err != nil || next.State != stateInFlight || !bytes.Equal(next.Fingerprint, fp) {
				return 0, nil
			}
			rev, rec = e.Revision(), next
			timer.Reset(rec.lease() - time.Since(s.sighted(k, rev)))
		case <-timer.C:
			return rev, nil
		}
	}
}

// sighting is when this Store first saw an in-flight entry at a revision,
// on its own monotonic clock.
type sighting struct {
	rev uint64
	at  time.Time
}

// minPruneAt is the size below which the sightings are never pruned.
const minPruneAt = 1024

// sighted returns when this Store first saw k at rev, across its Do calls,
// recording now if it had not seen that revision. A renewal is a new
// revision, so a live owner's entry is never older than its renewal
// period here.
func (s *Store) sighted(k string, rev uint64) time.Time {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sg, ok := s.sightings[k]; ok && sg.rev == rev {
		return sg.at
	}
	s.sightings[k] = sighting{rev: rev, at: now}
	if len(s.sightings) >= s.pruneAt {
		// Keys whose callers never came back: an entry is gone from the
		// bucket once Retention has passed since its last write, so a
		// sighting older than that is of nothing.
		for key, sg := range s.sightings {
			if now.Sub(sg.at) > s.cfg.Retention {
				delete(s.sightings, key)
			}
		}
		s.pruneAt = max(minPruneAt, 2*len(s.sightings))
	}
	return now
}

// forget drops the sighting of k, once its entry is no longer in flight
// under another owner: done, or owned here.
func (s *Store) forget(k string) {
	s.mu.Lock()
	delete(s.sightings, k)
	s.mu.Unlock()
}
