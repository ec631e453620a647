package service

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/idempotency"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/statusindex"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// DefaultCurrencies are the currencies accepted when no WithCurrencies option
// is given. Upvest's current API knows only EUR; later versions add more, so
// the set is configuration, not code.
var DefaultCurrencies = []string{"EUR"}

// An Option configures the services made by the New* constructors.
type Option interface{ applyService(*options) }

type optionFunc func(*options)

func (f optionFunc) applyService(o *options) { f(o) }

type options struct {
	currencies   map[string]bool
	currencyList string // for messages: "EUR, GBP"
	// callOpts holds per-method upstream call options by full gRPC method
	// name; "" applies to every method.
	callOpts map[string][]upstream.CallOption
	// events feeds the Watch RPCs; nil leaves them UNIMPLEMENTED.
	events    *events.Log
	watchOpts []events.WatchOption
	logger    *slog.Logger
	// snapshotSkew: see WithSnapshotSkew.
	snapshotSkew time.Duration
	// generateRequestIDs: see WithGeneratedRequestIDs.
	generateRequestIDs bool
	// idempotency: see WithIdempotencyStore; nil runs creates without it.
	idempotency *idempotency.Store
	// statusIndex: see WithStatusIndex.
	statusIndex *statusindex.Index
	// timeouts holds the default deadline of calls that bring none, by full
	// method name; "" applies to every method.
	timeouts map[string]time.Duration
	// adminGuard: see WithAdminGuard.
	adminGuard func(context.Context) error
	// metrics: see WithMetrics.
	metrics *metrics.Metrics
}

func newOptions(opts []Option) options {
	o := options{logger: slog.Default(), snapshotSkew: DefaultSnapshotSkew, timeouts: map[string]time.Duration{"": DefaultTimeout}, adminGuard: LoopbackOnly}
	WithCurrencies(DefaultCurrencies...).applyService(&o)
	for _, opt := range opts {
		if opt != nil {
			opt.applyService(&o)
		}
	}
	return o
}

// WithCurrencies replaces the set of ISO 4217 codes a request's currency
// field may hold (default DefaultCurrencies). Codes are compared exactly, as
// Upvest does; an empty list keeps the default.
func WithCurrencies(codes ...string) Option {
	return optionFunc(func(o *options) {
		if len(codes) == 0 {
			return
		}
		o.currencies = make(map[string]bool, len(codes))
		var list []string
		for _, c := range codes {
			if !o.currencies[c] {
				o.currencies[c] = true
				list = append(list, c)
			}
		}
		o.currencyList = strings.Join(list, ", ")
	})
}

// WithCallOptions adds upstream call options (e.g. upstream.WithCallRetry)
// to the upstream calls of one RPC, named by its full method name such as
// gatewayv1.TopupService_CreateTopup_FullMethodName, or of every RPC when
// method is "". Options for every RPC come first, so a method's own win.
// The idempotency key and the response info are the handlers' own and are
// applied last.
func WithCallOptions(method string, opts ...upstream.CallOption) Option {
	return optionFunc(func(o *options) {
		if o.callOpts == nil {
			o.callOpts = map[string][]upstream.CallOption{}
		}
		o.callOpts[method] = append(o.callOpts[method], opts...)
	})
}

// callOptions are the configured options for method.
func (o *options) callOptions(method string) []upstream.CallOption {
	if len(o.callOpts) == 0 {
		return nil
	}
	return append(append([]upstream.CallOption(nil), o.callOpts[""]...), o.callOpts[method]...)
}

// WithEvents makes the Watch RPCs stream from log, the event log the webhook
// receiver appends to. Without it they answer UNIMPLEMENTED.
func WithEvents(log *events.Log) Option {
	return optionFunc(func(o *options) { o.events = log })
}

// WithWatchOptions passes options to every subscription of the Watch RPCs:
// the heartbeat interval, the per-subscriber buffer and how long it may stay
// full before the subscriber is ended with RESOURCE_EXHAUSTED (see
// events.WithHeartbeat, events.WithBuffer, events.WithStallTimeout).
func WithWatchOptions(opts ...events.WatchOption) Option {
	return optionFunc(func(o *options) { o.watchOpts = append(o.watchOpts, opts...) })
}

// DefaultSnapshotSkew is the clock skew between the gateway and Upvest that
// WatchCashBalance allows for at its snapshot.
const DefaultSnapshotSkew = 2 * time.Second

// WithSnapshotSkew sets how far WatchCashBalance moves its snapshot's read_at
// back to allow for clock skew between the gateway and Upvest, whose clock
// stamps the updates' created_at (default DefaultSnapshotSkew; 0 trusts both
// clocks exactly). Updates created after read_at follow the snapshot: an
// update the snapshot already holds costs the subscriber a repeated balance,
// while dropping one it lacks would leave a stale balance until the next change.
func WithSnapshotSkew(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d >= 0 {
			o.snapshotSkew = d
		}
	})
}

// WithLogger sets where the services report what a caller does not see,
// such as an event whose object could not be decoded (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithGeneratedRequestIDs lets creating calls without a request_id (and
// without an Idempotency-Key header) through, with a key the gateway makes
// for the call; by default they are refused with INVALID_ARGUMENT, because a
// caller that retries such a call (as every client library, proxy and
// retry policy may on UNAVAILABLE or DEADLINE_EXCEEDED) creates twice. The
// key used is returned in the idempotency-key response metadata either way.
func WithGeneratedRequestIDs() Option {
	return optionFunc(func(o *options) { o.generateRequestIDs = true })
}

// DefaultTimeout is the deadline of a unary call that brings none, such as a
// REST call: without one, a stalled Upvest answer would hold the call for
// ever.
const DefaultTimeout = 30 * time.Second

// WithDefaultTimeout sets the deadline of calls to method (a full method
// name; "" for every method) that bring none (default DefaultTimeout). A
// caller's own deadline always wins.
func WithDefaultTimeout(method string, d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d > 0 {
			o.timeouts[method] = d
		}
	})
}

// timeout is the default deadline of method.
func (o *options) timeout(method string) time.Duration {
	if d, ok := o.timeouts[method]; ok {
		return d
	}
	return o.timeouts[""]
}

// WithIdempotencyStore makes every creating call run at most once per
// request_id across all replicas sharing store, with every call that sends
// the request_id getting the same answer: a repeat of a finished call is
// answered from the store, a repeat of one in flight waits for it, and the
// same request_id with a different request is refused with ALREADY_EXISTS.
func WithIdempotencyStore(store *idempotency.Store) Option {
	return optionFunc(func(o *options) { o.idempotency = store })
}

// WithStatusIndex gives the services the gateway's record of the resources
// Upvest cannot be asked about (virtual cash decreases): a cancel of one is
// checked against a restricted caller's account groups, and a cancel that
// Upvest refuses is a success if the decrease is in fact cancelled. Without
// it, restricted callers cannot cancel decreases, and a refused cancel is
// reported as it is.
func WithStatusIndex(ix *statusindex.Index) Option {
	return optionFunc(func(o *options) { o.statusIndex = ix })
}

// WithAdminGuard replaces the check every admin RPC (the quarantine
// service) passes first (default LoopbackOnly). Once caller authorization
// interceptors cover the admin services, pass nil to rely on them alone.
func WithAdminGuard(guard func(ctx context.Context) error) Option {
	return optionFunc(func(o *options) { o.adminGuard = guard })
}

// WithMetrics records in m how each creating call's outcome was had from
// the idempotency store (ran, replayed, waited for, taken over), request_ids
// reused for another request, and creates refused for want of the store.
func WithMetrics(m *metrics.Metrics) Option {
	return optionFunc(func(o *options) { o.metrics = m })
}
