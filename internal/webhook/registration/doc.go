// Package registration keeps the gateway's webhook subscription with
// Upvest as the gateway needs it: one subscription for its public URL, for
// the event categories it serves, enabled. Register creates it or brings it
// up to date, and is safe to run again and from several replicas at once:
// a second run updates, never duplicates.
//
// How concurrent runs agree, without a lock: a subscription is ours when
// it delivers to our URL. Every run lists the subscriptions after creating
// one, so the later of two racing creators sees both, and every run keeps
// the oldest of ours (by created_at, then id) and deletes the rest. A run
// that saw only its own subscription listed before the other existed, so
// the other is younger: both keep the same one. The create request also
// carries an idempotency-key derived from its body, so two replicas
// creating the same subscription at once are usually answered with one.
package registration
