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
//
// # Durable ingest
//
// [Log.Append] returns nil only once every event is acknowledged and, on
// the embedded server with group commit (the gateway's default,
// GATEWAY_EVENTS_SYNC_ALWAYS), on disk: the server writes each message to
// the operating system before acknowledging it, and the broker then
// fsyncs what changed, once for all the deliveries acknowledged meanwhile
// (broker.Broker.Sync). On an external cluster durability comes from
// replication (GATEWAY_NATS_REPLICAS).
//
// # Fan-out
//
// Subscribers do not each read the log. The first Watch starts the log's
// tail: one ordered consumer of the whole stream per gateway replica, which
// hands every message to the subscribers whose filter selects it, found in
// an index by account group and family, decoding it once and only if
// someone wants it. A subscriber costs a small struct and its Watch
// goroutine; its buffer exists only while events wait in it.
//
// The tail never waits for a subscriber. One whose buffer is full is taken
// off the tail; once it has sent what was buffered it catches up, then
// joins the tail again. Resuming from a token the tail has passed is the
// same catch-up. It reads from the latest events the tail keeps in memory
// ([WithRecentEvents]) when its position is among them, and otherwise from
// the log with a consumer of its own (its filter; at most [WithCatchUps] of
// them at a time, each going as fast as its subscriber sends): joining the
// tail first fixes the position from which the tail hands events on, then
// the catch-up reads up to it. Either way: no gap, no repeat. A subscriber
// is ended with [ErrSlowSubscriber] only when, once behind, a single send
// of its takes longer than the stall timeout.
//
// The tail hands on only events that are on disk: with group commit it
// waits for the sync of the Append that wrote them. An event's decoding,
// its resume token for a filter and whatever the subscribers derive from it
// ([Message.Memo]: the gateway's encoded response) are made once and
// shared.
//
// The tail reads every sequence number, so its position is exact: a quiet
// subscriber's heartbeat advances to it (no JetStream call per subscriber),
// and a message that retention removed before the tail read it shows as a
// jump, ending the subscribers that might have wanted it with
// [ErrTokenExpired]. A catch-up's consumer skips other filters' events, so
// there a jump is checked against the stream's first sequence before an
// event is sent past it.
package events
