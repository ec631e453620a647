package idempotency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var errWatchEnded = errors.New("watch ended")

// wait blocks while the entry, last seen at rev as rec, is in flight under
// another owner. Renewals (and a new owner's entries) restart the lease
// timer; any other change returns 0, nil and the caller reads the entry
// again. When no new revision comes for a whole lease, on this process's
// clock, wait takes the entry over by compare-and-set on rev and returns the
// new revision; losing that compare-and-set returns 0, nil too.
func (s *Store) wait(ctx context.Context, k string, fp []byte, rev uint64, rec record) (uint64, error) {
	w, err := s.kv.Watch(ctx, k)
	if err != nil {
		return 0, s.failure(ctx, "watching entry", err)
	}
	defer w.Stop()
	timer := time.NewTimer(rec.lease())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", ErrInProgress, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return 0, s.failure(ctx, "watching entry", errWatchEnded)
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
			timer.Reset(rec.lease())
		case <-timer.C:
			newRev, err := s.update(ctx, k, s.inFlight(fp), rev)
			switch {
			case err == nil:
				return newRev, nil
			case isConflict(err):
				return 0, nil
			default:
				return 0, s.failure(ctx, "taking over entry", err)
			}
		}
	}
}
