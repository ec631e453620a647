package upvestsim

import (
	"net/http"
	"net/url"
	"sync"
	"time"
)

// RequestRecord is one API request as the Sim judged it. Credentials are
// redacted: the authorization header and a token request's client_secret.
type RequestRecord struct {
	Time           time.Time   `json:"time"`
	RequestID      string      `json:"request_id"`
	Method         string      `json:"method"`
	Path           string      `json:"path"`
	Query          string      `json:"query,omitempty"`
	Header         http.Header `json:"header"`
	Body           string      `json:"body,omitempty"`
	Status         int         `json:"status"` // 0: no answer (client gone)
	Reason         string      `json:"reason"` // "ok", "replayed" or why it was refused
	KeyID          string      `json:"key_id,omitempty"`
	IdempotencyKey string      `json:"idempotency_key,omitempty"`
	Fault          FaultKind   `json:"fault,omitempty"`
	Duration       string      `json:"duration"`
}

// DeliveryRecord is one webhook delivery attempt.
type DeliveryRecord struct {
	Time      time.Time `json:"time"`
	WebhookID string    `json:"webhook_id"`
	URL       string    `json:"url"`
	EventIDs  []string  `json:"event_ids"`
	Attempt   int       `json:"attempt"` // 1 for the first try of a batch
	Status    int       `json:"status"`  // 0 on a transport error
	Error     string    `json:"error,omitempty"`
}

// recordLog keeps the inspection records under its own lock, so recording
// never contends with the simulated state.
type recordLog struct {
	mu         sync.Mutex
	requests   []RequestRecord
	deliveries []DeliveryRecord
}

const redacted = "[redacted]"

func (s *Sim) record(c *call, rep *reply, reason string, start time.Time) {
	rec := RequestRecord{
		Time:           start,
		RequestID:      c.requestID,
		Method:         c.r.Method,
		Path:           c.r.URL.Path,
		Query:          c.r.URL.RawQuery,
		Header:         c.r.Header.Clone(),
		Body:           string(c.body),
		Reason:         reason,
		KeyID:          c.keyID,
		IdempotencyKey: c.idemKey,
		Duration:       time.Since(start).String(),
	}
	if rec.Header.Get("Authorization") != "" {
		rec.Header.Set("Authorization", redacted)
	}
	if c.route != nil && c.route.public {
		rec.Body = redactForm(rec.Body)
	}
	if rep != nil {
		rec.Status = rep.status
	}
	if c.hasFault {
		rec.Fault = c.fault.Kind
	}
	s.records.mu.Lock()
	s.records.requests = appendRecord(s.records.requests, rec, s.cfg.MaxRecords)
	s.records.mu.Unlock()

	level := s.log.Info
	if rep == nil || rep.status >= 400 {
		level = s.log.Warn
	}
	level("upvestsim request", "method", rec.Method, "path", rec.Path, "status", rec.Status, "reason", reason,
		"request_id", rec.RequestID, "key_id", rec.KeyID, "fault", string(rec.Fault), "duration", rec.Duration)
}

// appendRecord appends r to records, keeping at most max of the latest
// (0: all). The oldest half goes at once, so that dropping costs little
// per record.
func appendRecord[R any](records []R, r R, max int) []R {
	if max > 0 && len(records) >= max {
		keep := max / 2
		records = append(records[:0], records[len(records)-keep:]...)
		clear(records[keep:cap(records)])
	}
	return append(records, r)
}

// redactForm hides client_secret in a token request body.
func redactForm(body string) string {
	v, err := url.ParseQuery(body)
	if err != nil || !v.Has("client_secret") {
		return body
	}
	v.Set("client_secret", redacted)
	return v.Encode()
}

func (s *Sim) recordDelivery(d DeliveryRecord) {
	s.records.mu.Lock()
	s.records.deliveries = appendRecord(s.records.deliveries, d, s.cfg.MaxRecords)
	s.records.mu.Unlock()
	level := s.log.Info
	if d.Status != http.StatusOK {
		level = s.log.Warn
	}
	level("upvestsim webhook delivery", "webhook_id", d.WebhookID, "url", d.URL, "events", len(d.EventIDs),
		"attempt", d.Attempt, "status", d.Status, "error", d.Error)
}

// Requests returns every API request received so far, in order.
func (s *Sim) Requests() []RequestRecord {
	s.records.mu.Lock()
	defer s.records.mu.Unlock()
	return append(make([]RequestRecord, 0, len(s.records.requests)), s.records.requests...)
}

// Deliveries returns every webhook delivery attempt so far, in order.
func (s *Sim) Deliveries() []DeliveryRecord {
	s.records.mu.Lock()
	defer s.records.mu.Unlock()
	return append(make([]DeliveryRecord, 0, len(s.records.deliveries)), s.records.deliveries...)
}

// TokenRequests counts the requests to POST /auth/token, whatever their
// outcome: tests use it to check that a client caches its token.
func (s *Sim) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}
