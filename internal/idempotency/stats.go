package idempotency

import "sync/atomic"

// Stats counts what a Store did since Open, for metrics.
type Stats struct {
	// Runs is how many times run was called: first attempts and takeovers.
	Runs uint64
	// Replays is how many Do calls found the key finished and returned its
	// stored outcome without running.
	Replays uint64
	// Waits is how many Do calls found the key in flight under another
	// owner and waited (counted when the wait begins).
	Waits uint64
	// Takeovers is how many runs followed an attempt that ended without an
	// outcome: a release, or a lease that expired. Part of Runs.
	Takeovers uint64
	// Conflicts is how many Do calls were refused with
	// ErrFingerprintMismatch.
	Conflicts uint64
	// Unrecorded is how many final outcomes could not be written (NATS
	// unavailable): the caller got the outcome, a retry will run again.
	Unrecorded uint64
}

type counters struct {
	runs, replays, waits, takeovers, conflicts, unrecorded atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Runs:       s.stats.runs.Load(),
		Replays:    s.stats.replays.Load(),
		Waits:      s.stats.waits.Load(),
		Takeovers:  s.stats.takeovers.Load(),
		Conflicts:  s.stats.conflicts.Load(),
		Unrecorded: s.stats.unrecorded.Load(),
	}
}
