// Package idempotency is the gateway's own memory of creating requests, so
// that for each request_id the upstream effect happens once and every caller
// that sends that request_id gets the same answer: across concurrent
// duplicates, across gateway replicas, and across a replica killed at any
// instant.
//
// A [Store] keeps one entry per key in a NATS JetStream key-value bucket, on
// the embedded server or on an external cluster alike, so replicas sharing a
// NATS share the store. An entry holds a hash of the request's fingerprint,
// a state, and once the request is finished its outcome as opaque bytes:
//
//   - in flight: an owner is running the request and renews a lease on it;
//   - done: the outcome is final and is replayed to every later caller;
//   - released: the owner ended without knowing the outcome (the connection
//     was lost after sending, a 504, a deadline), so the next caller with
//     the same request takes over at once. The fingerprint stays, so a
//     different request under that key is still refused.
//
// [Store.Do] is the one operation: it runs the request, replays a stored
// outcome, waits for another owner, or takes over from one that died or
// released. Every change of state is a compare-and-set on the entry's
// revision, so two owners never both record an outcome; a request is run
// again only when its outcome is unknown, and then with the same key, so
// Upvest's own idempotency answers that second attempt.
//
// # Leases
//
// An owner rewrites its entry every [Config].RenewEvery while it runs; each
// write gives the entry a new revision. A waiter that sees the revision
// unchanged for a whole lease ([Config].Lease, as the owner declared it in
// the entry), measured on its own process's clock from when its Store first
// saw that revision, takes the entry over. No wall clocks are compared
// across hosts, so clock skew cannot expire a live lease, and no key stays
// blocked: at worst a caller waits one lease after it arrives, and callers
// whose deadlines are shorter than the lease, retrying on the same replica,
// add up to it rather than each starting it anew. An owner that was only cut off (not dead) may still finish
// after a takeover; the first final outcome written wins, and the other
// owner returns that one instead of its own.
//
// # Keys
//
// Keys are compared exactly, byte for byte. Canonical form is the caller's
// job: the gateway lower-cases request_id UUIDs (and sends the same
// lower-cased key upstream) before calling Do, so a client that retries with
// the upper-case spelling of its UUID finds its first request. Any key of up
// to [MaxKeyLen] bytes is accepted: one of letters, digits, '-' and '_'
// (a UUID) is stored under itself, any other under an escaped form, so that
// every key maps onto its own key-value key.
//
// # Retention
//
// The bucket keeps an entry for [Config].Retention after its last write
// (the outcome, or the release). A request_id older than that is unknown to
// the gateway and is treated as new: it is run, and goes upstream with the
// same idempotency-key, where Upvest's own retention decides whether it is
// replayed or acts again. Keep Retention at least as long as clients retry.
//
// # Failure
//
// The store fails closed: when NATS cannot be reached, Do returns an error
// wrapping [ErrUnavailable] and does not run the request. Once a request has
// run, its outcome is returned to the caller even if it cannot be recorded;
// a later retry then runs it again under the same key (counted in
// [Stats].Unrecorded).
package idempotency
