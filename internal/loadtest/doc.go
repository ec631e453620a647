// Package loadtest holds the gateway's load scenarios for event streams, as
// functions that a benchmark (go test -bench) or a command runs against a
// gateway, in this process or another:
//
//   - [IdleStreams]: the gateway's resident memory per idle Watch stream,
//     with the streams opened by another process so that only the gateway
//     is measured;
//   - [Fanout]: webhook → subscriber latency, signed deliveries at a steady
//     rate to subscribers filtered each to its own account group, or all
//     unfiltered, and whether ingest kept its rate meanwhile;
//   - [Ingest]: events/s of webhook deliveries stored durably, from
//     concurrent senders, and [VerifyCost], the signature check per
//     delivery it leaves out.
//
// The subscriber side ([OpenStreams]) runs in-process or in a child process
// ([StartSubscriberProcess] and [ServeSubscriberProcess]), so the gateway's
// own memory and CPU can be told apart from its clients'. Latency is
// measured from the moment a delivery is sent to the moment a subscriber
// has the event decoded, using the event's created_at, which the sender
// sets to the time of sending (one clock: the same host).
package loadtest
