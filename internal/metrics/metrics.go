// Package metrics holds every Prometheus metric of the gateway, under the
// names docs/metrics.md lists, so that code, dashboard and alert rules
// agree. The other packages record through a *Metrics they are given; every
// method is a no-op on a nil *Metrics, so a package used without metrics
// (in a test, say) needs no special case.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "upvest_gateway"

// Metrics is the gateway's set of metrics on its own registry.
type Metrics struct {
	reg *prometheus.Registry

	grpc *grpcServer

	upstreamRequests  *prometheus.CounterVec
	upstreamDuration  *prometheus.HistogramVec
	upstreamRetries   *prometheus.CounterVec
	upstreamUnknown   *prometheus.CounterVec
	tokenRequests     *prometheus.CounterVec
	tokenRefreshes    *prometheus.CounterVec
	idempotency       *prometheus.CounterVec
	idempotencyReuse  prometheus.Counter
	idempotencyDown   prometheus.Counter
	webhookDeliveries *prometheus.CounterVec
	webhookRejections *prometheus.CounterVec
	webhookEvents     *prometheus.CounterVec
	appendDuration    prometheus.Histogram
	appendErrors      prometheus.Counter
	streamsActive     *prometheus.GaugeVec
	streamLag         *shardedHistogram
	streamsEnded      *prometheus.CounterVec
}

// Latency buckets, from a loopback call (a millisecond) to a slow Upvest
// answer (tens of seconds).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New makes the metrics, with the Go runtime's and the process's, and
// build_info naming version.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.grpc = newGRPCServer()
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	m.upstreamRequests = counter("upstream_requests_total", "HTTP attempts to Upvest by operation, answer status (or transport_error) and attempt number.", "operation", "status", "attempt")
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "upstream_request_duration_seconds",
		Help: "Time of one HTTP attempt to Upvest.", Buckets: latencyBuckets}, []string{"operation"})
	m.upstreamRetries = counter("upstream_retries_total", "Attempts to Upvest repeated, by why.", "operation", "reason")
	m.upstreamUnknown = counter("upstream_outcome_unknown_total", "Calls that ended without knowing whether Upvest acted.", "operation")
	m.tokenRequests = counter("upstream_token_requests_total", "OAuth2 token requests to Upvest, by result (ok, refused, error).", "result")
	m.tokenRefreshes = counter("upstream_token_refreshes_total", "Tokens replaced, by why (expiry, unauthorized).", "reason")
	m.idempotency = counter("idempotency_requests_total", "Creating calls through the idempotency store, by how their outcome was had (ran, replayed, waited, took_over).", "source")
	m.idempotencyReuse = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "idempotency_conflicts_total", Help: "request_ids reused for a different request."})
	m.idempotencyDown = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "idempotency_unavailable_total", Help: "Creating calls refused because the idempotency store could not be reached."})
	m.webhookDeliveries = counter("webhook_deliveries_total", "Webhook deliveries by the HTTP status answered.", "code")
	m.webhookRejections = counter("webhook_rejections_total", "Webhook deliveries refused, by reason.", "reason")
	m.webhookEvents = counter("webhook_events_total", "Webhook events by what became of them (stored, duplicate, quarantined).", "result")
	m.appendDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "event_log_append_duration_seconds",
		Help: "Time to append a delivery's events to the event log, durably.", Buckets: latencyBuckets})
	m.appendErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "event_log_append_errors_total", Help: "Appends to the event log that failed."})
	m.streamsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "streams_active", Help: "Open Watch streams by RPC."}, []string{"method"})
	m.streamLag = newShardedHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "stream_event_lag_seconds",
		Help: "Time from an event's append to the log until it is handed to a subscriber.", Buckets: latencyBuckets})
	m.streamsEnded = counter("streams_ended_total", "Watch streams ended, by RPC and reason.", "method", "reason")

	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info", Help: "The gateway's version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision(), "go_version": runtime.Version()}})
	buildInfo.Set(1)

	m.reg.MustRegister(m.grpc.collectors()...)
	m.reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo,
		m.upstreamRequests, m.upstreamDuration, m.upstreamRetries, m.upstreamUnknown, m.tokenRequests, m.tokenRefreshes,
		m.idempotency, m.idempotencyReuse, m.idempotencyDown,
		m.webhookDeliveries, m.webhookRejections, m.webhookEvents, m.appendDuration, m.appendErrors,
		m.streamsActive, m.streamLag, m.streamsEnded,
	)
	return m
}

func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the metrics' registry, for tests that read them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// UpstreamAttempt records one HTTP attempt to Upvest: its answer's status
// (0: none came), its number and how long it took.
func (m *Metrics) UpstreamAttempt(operation string, status, attempt int, d time.Duration) {
	if m == nil {
		return
	}
	s := "transport_error"
	if status > 0 {
		s = strconv.Itoa(status)
	}
	a := "4+"
	if attempt < 4 {
		a = strconv.Itoa(attempt)
	}
	m.upstreamRequests.WithLabelValues(operation, s, a).Inc()
	m.upstreamDuration.WithLabelValues(operation).Observe(d.Seconds())
}

// UpstreamRetry records an attempt repeated for reason.
func (m *Metrics) UpstreamRetry(operation, reason string) {
	if m != nil {
		m.upstreamRetries.WithLabelValues(operation, reason).Inc()
	}
}

// UpstreamOutcomeUnknown records a call that ended not knowing whether
// Upvest acted.
func (m *Metrics) UpstreamOutcomeUnknown(operation string) {
	if m != nil {
		m.upstreamUnknown.WithLabelValues(operation).Inc()
	}
}

// TokenRequest records a token request's result: ok, refused or error.
func (m *Metrics) TokenRequest(result string) {
	if m != nil {
		m.tokenRequests.WithLabelValues(result).Inc()
	}
}

// TokenRefresh records a token replaced for reason: expiry or unauthorized.
func (m *Metrics) TokenRefresh(reason string) {
	if m != nil {
		m.tokenRefreshes.WithLabelValues(reason).Inc()
	}
}

// Idempotency records how a creating call's outcome was had: ran,
// replayed, waited or took_over.
func (m *Metrics) Idempotency(source string) {
	if m != nil {
		m.idempotency.WithLabelValues(source).Inc()
	}
}

// IdempotencyConflict records a request_id reused for another request.
func (m *Metrics) IdempotencyConflict() {
	if m != nil {
		m.idempotencyReuse.Inc()
	}
}

// IdempotencyUnavailable records a create refused for want of the store.
func (m *Metrics) IdempotencyUnavailable() {
	if m != nil {
		m.idempotencyDown.Inc()
	}
}

// WebhookDelivery records a delivery's answer, and for a refusal its reason.
func (m *Metrics) WebhookDelivery(code int, reason string) {
	if m == nil {
		return
	}
	m.webhookDeliveries.WithLabelValues(strconv.Itoa(code)).Inc()
	if code != http.StatusOK && reason != "" {
		m.webhookRejections.WithLabelValues(reason).Inc()
	}
}

// WebhookEvents records n events of a delivery that were stored, found
// duplicate or quarantined.
func (m *Metrics) WebhookEvents(result string, n int) {
	if m != nil && n > 0 {
		m.webhookEvents.WithLabelValues(result).Add(float64(n))
	}
}

// Append records an append to the event log.
func (m *Metrics) Append(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.appendDuration.Observe(d.Seconds())
	if err != nil {
		m.appendErrors.Inc()
	}
}

// StreamOpened records a Watch stream of method opening, and returns what
// records it ending, with the reason it ended.
func (m *Metrics) StreamOpened(method string) (ended func(reason string)) {
	if m == nil {
		return func(string) {}
	}
	g := m.streamsActive.WithLabelValues(method)
	g.Inc()
	return func(reason string) {
		g.Dec()
		m.streamsEnded.WithLabelValues(method, reason).Inc()
	}
}

// StreamLag returns what records, for one Watch stream, how long after its
// append each event reached the subscriber. Each stream takes its own: the
// streams' recorders spread over the histogram's shards.
func (m *Metrics) StreamLag() func(time.Duration) {
	if m == nil {
		return func(time.Duration) {}
	}
	observe := m.streamLag.observer()
	return func(d time.Duration) { observe(d.Seconds()) }
}
