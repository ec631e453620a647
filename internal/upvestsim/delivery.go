package upvestsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/upvest-gateway/gateway/internal/pause"
)

// emptyPayload is the body of a test delivery.
var emptyPayload = []byte(`{"payload":[]}`)

// batch is one delivery: a body sent, and retried, as a whole.
type batch struct {
	webhook  string // subscription id
	url      string
	body     []byte
	eventIDs []string
	test     bool // POST /webhooks/{id}/test: one attempt, nothing to dequeue
}

// deliverLoop delivers one subscription's queue, a batch at a time, until
// the subscription is deleted or the Sim closed. Being the only sender for
// the subscription is what holds back later batches while one is retried.
func (s *Sim) deliverLoop(sub *subscription) {
	defer s.wg.Done()
	for {
		b, ok := s.nextBatch(sub)
		if !ok {
			select {
			case <-sub.wake:
				continue
			case <-sub.ctx.Done():
				return
			}
		}
		if b.test {
			s.attempt(sub, b, 1)
			continue
		}
		for try := 1; ; try++ {
			if s.attempt(sub, b, try) {
				s.mu.Lock()
				n := len(b.eventIDs)
				clear(sub.pending[:n])
				sub.pending = sub.pending[n:]
				s.mu.Unlock()
				break
			}
			if !pause.For(sub.ctx, backoff(try)*s.cfg.WebhookBackoffUnit) {
				return
			}
			url, ok := s.awaitDeliverable(sub)
			if !ok {
				return
			}
			b.url = url // a PATCH may have moved the subscription
		}
	}
}

// nextBatch takes the next delivery of sub, if one may be sent now.
func (s *Sim) nextBatch(sub *subscription) (batch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.paused || sub.ctx.Err() != nil:
		return batch{}, false
	case sub.tests > 0:
		sub.tests--
		return batch{webhook: sub.json.ID, url: sub.json.URL, body: emptyPayload, test: true}, true
	case !sub.json.Enabled || len(sub.pending) == 0:
		return batch{}, false
	}
	return s.packBatch(sub), true
}

// packBatch packs the oldest pending events, in created_at order, into one
// body of at most WebhookBatchSize events and max_package_size bytes (but
// at least one event); s.mu must be held.
func (s *Sim) packBatch(sub *subscription) batch {
	b := batch{webhook: sub.json.ID, url: sub.json.URL}
	var buf bytes.Buffer
	buf.WriteString(`{"payload":[`)
	const closing = len(`]}`)
	for i, ev := range sub.pending {
		if i == s.cfg.WebhookBatchSize {
			break
		}
		ev.WebhookID = sub.json.ID
		raw, err := json.Marshal(ev)
		if err != nil {
			panic("upvestsim: marshal event: " + err.Error())
		}
		if i > 0 {
			if buf.Len()+len(",")+len(raw)+closing > sub.json.Config.MaxPackageSize {
				break
			}
			buf.WriteByte(',')
		}
		buf.Write(raw)
		b.eventIDs = append(b.eventIDs, ev.ID)
	}
	buf.WriteString(`]}`)
	b.body = buf.Bytes()
	return b
}

// attempt sends b once, signed, and records it. Only a 200 counts as
// delivered, as upstream.
func (s *Sim) attempt(sub *subscription, b batch, try int) bool {
	rec := DeliveryRecord{Time: time.Now(), WebhookID: b.webhook, URL: b.url, EventIDs: b.eventIDs, Attempt: try}
	if rec.EventIDs == nil {
		rec.EventIDs = []string{}
	}
	status, err := s.post(sub.ctx, b.url, b.body)
	rec.Status = status
	if err != nil {
		rec.Error = err.Error()
	}
	if sub.ctx.Err() != nil && err != nil {
		return false // deleted or closed mid-flight: not an attempt worth recording
	}
	s.recordDelivery(rec)
	return status == http.StatusOK
}

// post sends one signed delivery and reports the status answered.
func (s *Sim) post(ctx context.Context, url string, body []byte, opts ...DeliveryOption) (int, error) {
	var o deliveryOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyDelivery(&o)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	if o.clientID != "" {
		req.Header.Set("Upvest-Client-Id", o.clientID) // covered by the signature
	}
	signer := s.webhookSigner
	if !o.signedAt.IsZero() {
		if signer, err = s.webhookSignerAt(o.signedAt); err != nil {
			return 0, err
		}
	}
	if err := signer.Sign(req, body); err != nil {
		return 0, err
	}
	resp, err := s.cfg.WebhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// awaitDeliverable blocks while deliveries are paused or sub is disabled,
// and returns its current URL; false when sub ends.
func (s *Sim) awaitDeliverable(sub *subscription) (string, bool) {
	for {
		s.mu.Lock()
		ok, url := !s.paused && sub.json.Enabled, sub.json.URL
		s.mu.Unlock()
		if ok {
			return url, true
		}
		select {
		case <-sub.wake:
		case <-sub.ctx.Done():
			return "", false
		}
	}
}

// maxBackoffUnits caps the retry schedule: upstream retries without limit,
// at most every 600 s.
const maxBackoffUnits = 600

// backoff is the upstream retry schedule in units: 1, 2, 3, 5, 8, … (each
// the sum of the two before), at most 600.
func backoff(try int) time.Duration {
	a, b := 1, 2
	for i := 1; i < try && a < maxBackoffUnits; i++ {
		a, b = b, a+b
	}
	return time.Duration(min(a, maxBackoffUnits))
}

// SendDelivery POSTs body to url once, signed with the simulator's webhook
// key as its own deliveries are, and returns the status answered. It is
// for deliveries the simulator's state would not produce: another tenant's
// (Upvest signs every tenant's deliveries with the same keys), ones with
// malformed events, ones signed long ago. It is not recorded in Deliveries.
func (s *Sim) SendDelivery(ctx context.Context, url string, body []byte, opts ...DeliveryOption) (int, error) {
	return s.post(ctx, url, body, opts...)
}

// A DeliveryOption adjusts a delivery made with SendDelivery.
type DeliveryOption interface{ applyDelivery(*deliveryOptions) }

type deliveryOptions struct {
	clientID string
	signedAt time.Time
}

type deliveryOptionFunc func(*deliveryOptions)

func (f deliveryOptionFunc) applyDelivery(o *deliveryOptions) { f(o) }

// ForClient sends upvest-client-id: id, covered by the signature.
func ForClient(id string) DeliveryOption {
	return deliveryOptionFunc(func(o *deliveryOptions) { o.clientID = id })
}

// SignedAt signs as if at t (created = t), as a delivery Upvest re-sends
// with its original signature.
func SignedAt(t time.Time) DeliveryOption {
	return deliveryOptionFunc(func(o *deliveryOptions) { o.signedAt = t })
}
