// Package events turns Upvest's webhook deliveries into a durable, resumable
// event log and serves it to subscribers.
//
// Three parts, one file per concept:
//
//   - [Receiver] is the http.Handler for POST /webhooks/upvest: it caps the
//     body, verifies Upvest's signature (v6, also v15) against keys from
//     GET /auth/verify_keys, validates the whole delivery and appends every
//     event before answering 200. Anything else gets a non-2xx answer, so
//     Upvest retries the delivery and nothing is lost.
//   - [Log] is the event log: a NATS JetStream stream, on a server embedded
//     in the process by default or on an external NATS (cluster), so that
//     several gateway replicas share one log. Events are de-duplicated on
//     their upstream id (Nats-Msg-Id), because Upvest delivers at least once.
//   - [Log.Watch] streams events matching a [Filter] to one subscriber, with
//     an opaque resume token on every message, so that a subscriber can
//     reconnect and continue exactly where it left off.
//
// Subjects are <prefix>.<family>.<status>.<account group|_>, e.g.
// upvest.events.topup.settled.2a761567-251b-450e-8615-025d61dcc95e, so that
// every filter a subscriber can ask for is a JetStream subject filter, not a
// scan.
package events
