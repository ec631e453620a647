// Package upvestsim is a stateful fake of the Upvest Investment API: the
// virtual cash, top-up, payment (direct debit, withdrawal) and cash balance
// operations, OAuth2 client credentials, and webhooks. Every test of the
// gateway runs against it and `gateway --simulate` serves from it, so it is
// an independent oracle: it defines its own wire structs and checks requests
// as strictly as the real API, rather than sharing code with the client it
// tests.
//
// A Sim is an http.Handler. Each API request passes, in order:
//
//   - routing: unknown path 404, known path with another method 405;
//   - fault injection (429, 500, 503, 504 answered before anything else;
//     drop_after_apply and unreadable_answer act, then lose or cut the answer);
//   - upvest-client-id equal to Config.ClientID, then a version 15 HTTP
//     message signature by one of Config.TenantKeys covering "@method",
//     "@path", "upvest-client-id", "authorization" (except on /auth/token),
//     "@query" when there is a query, "content-digest", "content-length" and
//     "content-type" when there is a body, and "idempotency-key" when that
//     header is sent (401 otherwise);
//   - a known, unexpired bearer token (401) holding one of the operation's
//     scopes (403);
//   - upvest-api-version absent or 1 (400) and an accept header that allows
//     application/json (406);
//   - an idempotency-key on creating POSTs (400 missing_idempotency_key) that
//     matches the upstream pattern, then replay (same key and body: the first
//     answer again, without acting), 422 (same key, different body) or 409
//     (same key still in flight);
//   - strict body decoding: unknown fields, missing required fields, UUIDs,
//     amount, remittance_information and currency patterns (400 naming the
//     field);
//   - the operation itself: 404 for unknown ids, 422 for refused state
//     changes (cancel in the wrong status, withdrawal above
//     available_for_withdrawal).
//
// Every answer carries an upvest-request-id header; errors are
// application/problem+json with type https://docs.upvest.co/errors/<word>.
//
// # Lifecycle
//
// Resources move one status forward on each Advance (and every Config.Step
// when set), in creation order, so tests are deterministic:
//
//	virtual cash increase  ISSUED → CONFIRMED
//	virtual cash decrease  ISSUED → CONFIRMED, or QUEUED while available_for_trading
//	                       does not cover it, then CONFIRMED once it does
//	top-up                 CONFIRMED (on creation) → SETTLED
//	direct debit           NEW → PROCESSING → CONFIRMED
//	withdrawal             NEW → PROCESSING → CONFIRMED
//
// Cancels: a virtual cash decrease while ISSUED or QUEUED, a top-up while NEW
// or CONFIRMED, a withdrawal while NEW; otherwise 422.
//
// # Cash balance model
//
// Balances are kept per account group (and currency) as exact decimals (a
// big.Int of 10^-27 units, never floats) and rendered in the upstream format
// without trailing zeros ("100.25", "80", "-3.5"). An unknown account group
// has all-zero balances. Every money movement changes them as follows
// (a = amount):
//
//	virtual cash increase CONFIRMED  balance +a, available_for_trading +a
//	virtual cash decrease CONFIRMED  balance −a, available_for_trading −a
//	top-up CONFIRMED (creation)      balance +a, available_for_trading +a, pending_settlement +a
//	top-up SETTLED                   pending_settlement −a, available_for_withdrawal +a
//	top-up CANCELLED                 reverses CONFIRMED: balance, available_for_trading, pending_settlement −a
//	direct debit CONFIRMED           balance, available_for_trading, available_for_withdrawal +a
//	withdrawal NEW (creation)        available_for_withdrawal −a, available_for_trading −a (reserved)
//	withdrawal CONFIRMED             balance −a
//	withdrawal CANCELLED             available_for_withdrawal +a, available_for_trading +a (reserve released)
//
// locked_for_trading only changes through SetCashBalance (orders are not
// simulated).
//
// # Webhooks
//
// Every state change, creation included, emits the upstream event type
// (e.g. TOPUP.CONFIRMED), and every balance change CASH_BALANCE.UPDATED, with
// the resource's JSON exactly as the REST answer. Events are queued for each
// enabled subscription whose categories match and delivered by one goroutine
// per subscription, in batches of {"payload": [...]} (at most
// Config.WebhookBatchSize events and the subscription's max_package_size
// bytes), signed with the version 6 scheme by a P-521 key published at
// /auth/verify_keys. Any answer but 200 retries the whole batch with backoff
// 1, 2, 3, 5, 8 … 600 × Config.WebhookBackoffUnit and holds back every later
// batch of that subscription until it succeeds.
//
// # Inspection and faults
//
// Tests inspect the Sim directly (Events, Effects, Requests, Deliveries,
// CashBalance, Subscriptions, and Ledger: every resource with the
// idempotency key that created it, its status, and the balances, in one
// consistent view) and inject faults (InjectFault, Config.FaultRate). The
// same is served as JSON under /_sim/ for programs in other languages;
// faults never apply there.
package upvestsim
