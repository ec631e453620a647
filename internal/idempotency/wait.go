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
func (s *Store) wait(ctx context.Context, k string, fp []byte, rev uint64, rec record) (uint64, error) {
	w, err := s.kv.Watch(ctx, k)
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	timer := time.NewTimer(rec.lease())
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
			timer.Reset(rec.lease())
		case <-timer.C:
			return rev, nil
		}
	}
}
