package idempotency

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// state is where a request stands.
type state string

const (
	stateInFlight state = "in_flight"
	stateDone     state = "done"
	stateReleased state = "released"
)

// recordVersion is the layout of an entry. A Store refuses an entry of
// another version rather than guess at it.
const recordVersion = 1

// record is one entry of the bucket, as JSON so that an operator can read it
// with the nats CLI.
type record struct {
	Version int   `json:"v"`
	State   state `json:"state"`
	// Fingerprint is the SHA-256 of the caller's fingerprint: fixed size,
	// and the request's bytes (amounts, account ids) are not kept.
	Fingerprint []byte `json:"fp"`
	// Owner and LeaseMillis describe an in-flight entry: who runs it, and
	// how long waiters give it without a renewal. The owner's lease, not the
	// waiter's configuration, so replicas configured differently agree.
	Owner       string `json:"owner,omitempty"`
	LeaseMillis int64  `json:"lease_ms,omitempty"`
	// Outcome is what the caller's run returned, in a done entry.
	Outcome []byte `json:"outcome,omitempty"`
}

// maxLease bounds the lease an entry may declare, so a corrupt or hostile
// entry cannot block a key for longer than this.
const maxLease = 10 * time.Minute

func fingerprintHash(fp []byte) []byte {
	h := sha256.Sum256(fp)
	return h[:]
}

func (r record) lease() time.Duration {
	return time.Duration(r.LeaseMillis) * time.Millisecond
}

func (r record) encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// A record is strings, integers and byte slices: it always encodes.
		panic("idempotency: encoding a record: " + err.Error())
	}
	return b
}

var errBadRecord = errors.New("idempotency: unreadable entry")

// decodeRecord reads an entry and checks that it is whole: a Store acts on
// what it reads (replays it, waits on it), so anything it cannot trust is an
// error, never a guess.
func decodeRecord(b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("%w: not JSON", errBadRecord)
	}
	switch {
	case r.Version != recordVersion:
		return record{}, fmt.Errorf("%w: version %d", errBadRecord, r.Version)
	case len(r.Fingerprint) != sha256.Size:
		return record{}, fmt.Errorf("%w: fingerprint of %d bytes", errBadRecord, len(r.Fingerprint))
	}
	switch r.State {
	case stateInFlight:
		if r.LeaseMillis <= 0 || r.lease() > maxLease {
			return record{}, fmt.Errorf("%w: lease of %d ms", errBadRecord, r.LeaseMillis)
		}
	case stateDone, stateReleased:
	default:
		return record{}, fmt.Errorf("%w: state %q", errBadRecord, r.State)
	}
	if len(r.Outcome) == 0 {
		r.Outcome = nil // an empty outcome reads back the same however it was written
	}
	return r, nil
}
