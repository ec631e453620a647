// Package chaos is the gateway's chaos suite: it shows that every creating
// call moves money exactly once per request_id, and that every caller of a
// request_id gets the same answer, while everything around the gateway
// fails.
//
// The suite builds and runs real processes: the Upvest simulator
// (cmd/upvest-sim) injecting a random fault into a fifth of the requests
// (429, 500, 503, 504, "applied, then the connection dropped", and
// "applied, then an answer that cannot be read"), and two gateway replicas
// (cmd/gateway) sharing one NATS: the one of GATEWAY_NATS_URL, else a NATS
// server in the test process. Concurrent callers create top-ups,
// withdrawals, direct debits and virtual cash increases and decreases, and
// cancel top-ups, withdrawals and decreases, several callers per operation,
// each retrying UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED and
// RESOURCE_EXHAUSTED with the same request_id (or id) and alternating
// between the replicas. A second run also kills the replicas with SIGKILL
// mid-run and restarts them. At the end the simulator's ledger must show one
// resource per request_id, the one every caller was told of; none for a
// request_id refused for good; no cancel reported failed that took effect,
// and no cancel reported done that did not; and balances that add up.
//
// It takes minutes, so its tests build only with the chaos tag:
//
//	go test -race -tags chaos ./internal/chaos/
package chaos
