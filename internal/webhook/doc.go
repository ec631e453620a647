// Package webhook receives Upvest's webhook deliveries (POST
// /webhooks/upvest): it caps the body, verifies Upvest's signature (v6, also
// v15) against keys from GET /auth/verify_keys, and appends the events to
// the event log (internal/events) before answering 200. Anything else gets
// a non-2xx answer, so Upvest retries the delivery and nothing is lost.
package webhook
