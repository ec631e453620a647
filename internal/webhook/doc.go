// Package webhook receives Upvest's webhook deliveries (POST
// /webhooks/upvest): it rate-limits senders before any cryptography, caps
// the body, verifies Upvest's signature (v6, also v15) against keys from GET
// /auth/verify_keys, checks that the delivery is for this tenant, reads the
// delivery's envelope, and appends each valid event to the event log
// (internal/events) and each malformed one to the log's quarantine, before
// answering 200. One bad event never makes Upvest retry a delivery, since it
// holds back every later one meanwhile; only a bad signature or an
// unavailable log does.
package webhook
