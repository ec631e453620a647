// Package events is the gateway's event log: Upvest's webhook events, stored
// durably on NATS JetStream (see internal/broker) and served to resumable
// subscribers.
//
//   - [Log] is one JetStream stream. Events are de-duplicated on their
//     upstream id (Nats-Msg-Id), because Upvest delivers at least once.
//     internal/webhook appends what it receives.
//   - [Log.Watch] streams events matching a [Filter] to one subscriber, with
//     an opaque resume token on every message, so that a subscriber can
//     reconnect and continue exactly where it left off.
//   - [Quarantine] is the log's dead-letter stream: what a correctly signed
//     delivery held that the log cannot take, with its raw bytes and the
//     reason, until an operator re-injects it ([Quarantine.Reinject]).
//     [ParseEvent] is the one judge of an event, for deliveries, the
//     quarantine and the log reading back what it stored.
//
// Subjects are <prefix>.<family>.<status>.<account group|_>, e.g.
// upvest.events.topup.settled.2a761567-251b-450e-8615-025d61dcc95e, so that
// every filter a subscriber can ask for is a JetStream subject filter, not a
// scan.
package events
