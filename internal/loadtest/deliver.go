package loadtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// WebhookSigner signs deliveries as Upvest does (signature version 6).
type WebhookSigner struct {
	KeyID  string
	Public crypto.PublicKey
	signer *httpsig.Signer
}

// NewWebhookSigner makes a signer with a fresh key: Ed25519 by default,
// whose check costs the gateway about 60 µs per delivery, so that the
// scenarios measure the event path rather than the signature (see
// VerifyCost for Upvest's P-521). The gateway must accept Public under
// KeyID (servertest.WithWebhookKeys).
func NewWebhookSigner(key crypto.Signer) (*WebhookSigner, error) {
	if key == nil {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	}
	kid := "loadtest-" + uuid.NewString()[:8]
	s, err := httpsig.NewSigner(key, kid, httpsig.WithVersion(httpsig.Version6))
	if err != nil {
		return nil, err
	}
	return &WebhookSigner{KeyID: kid, Public: key.Public(), signer: s}, nil
}

// Keys is the key set that verifies the signer's deliveries.
func (s *WebhookSigner) Keys() map[string]crypto.PublicKey {
	return map[string]crypto.PublicKey{s.KeyID: s.Public}
}

// newDelivery is a signed POST of body to url.
func (s *WebhookSigner) newDelivery(ctx context.Context, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, s.signer.Sign(req, body)
}

// WebhookID is the webhook subscription every delivery's events name, for
// a gateway bound to its subscriptions (GATEWAY_WEBHOOK_IDS).
const WebhookID = "9df39835-be87-4243-9018-f2500b39cee6"

// deliveryBody is a webhook delivery of n TOPUP.SETTLED events created now,
// for account groups picked by group(i).
func deliveryBody(n int, group func(i int) string) []byte {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var b bytes.Buffer
	b.WriteString(`{"payload":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%q,"created_at":%q,"type":"TOPUP.SETTLED","webhook_id":%q,`+
			`"object":{"id":%q,"account_group_id":%q,"status":"SETTLED","cash_amount":"10.00","currency":"EUR"}}`,
			uuid.NewString(), now, WebhookID, uuid.NewString(), group(i))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// sender posts deliveries and keeps score.
type sender struct {
	url    string
	sign   *WebhookSigner
	client *http.Client

	mu         sync.Mutex
	deliveries int
	events     int
	failed     int
	errs       []string
	latency    []time.Duration
}

func newSender(url string, s *WebhookSigner, conns int) *sender {
	return &sender{url: url, sign: s, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns},
	}}
}

// post sends one delivery of events events and records the outcome.
func (s *sender) post(ctx context.Context, body []byte, events int) {
	start := time.Now()
	err := func() error {
		req, err := s.sign.newDelivery(ctx, s.url, body)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("%s: %s", resp.Status, msg)
		}
		return nil
	}()
	d := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.failed++
			if len(s.errs) < 5 {
				s.errs = append(s.errs, err.Error())
			}
		}
		return
	}
	s.deliveries++
	s.events += events
	s.latency = append(s.latency, d)
}

func (s *sender) close() { s.client.CloseIdleConnections() }

// DeliveriesConfig is a steady stream of signed webhook deliveries.
type DeliveriesConfig struct {
	URL               string // the gateway's webhook receiver
	Signer            *WebhookSigner
	EventsPerSecond   int
	EventsPerDelivery int // default 10
	Duration          time.Duration
	// AccountGroups the events are spread over, in turn; empty: one.
	AccountGroups []string
	// MaxInFlight bounds the deliveries awaiting their answer (default
	// 64); a delivery due while all are busy is sent late, and counted.
	MaxInFlight int
}

// DeliveriesResult is how the gateway took the deliveries.
type DeliveriesResult struct {
	Deliveries int // answered 200
	Events     int // in those
	Failed     int
	Errors     []string
	Late       int // sent behind schedule: the gateway held every sender
	Elapsed    time.Duration
	// EventsPerSecond is the rate the gateway stored events at, over the
	// run: the configured rate unless ingest fell behind.
	EventsPerSecond float64
	Latency         Summary // POST → 200, per delivery
}

// Deliver sends deliveries on a fixed schedule (an open loop: a slow answer
// does not delay the next delivery, it occupies another sender) and waits
// for the last answer.
func Deliver(ctx context.Context, cfg DeliveriesConfig) (DeliveriesResult, error) {
	if cfg.EventsPerSecond <= 0 || cfg.Duration <= 0 || cfg.Signer == nil {
		return DeliveriesResult{}, fmt.Errorf("loadtest: Deliver needs EventsPerSecond, Duration and Signer")
	}
	if cfg.EventsPerDelivery <= 0 {
		cfg.EventsPerDelivery = 10
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if len(cfg.AccountGroups) == 0 {
		cfg.AccountGroups = []string{uuid.NewString()}
	}
	s := newSender(cfg.URL, cfg.Signer, cfg.MaxInFlight)
	defer s.close()
	interval := time.Duration(float64(time.Second) * float64(cfg.EventsPerDelivery) / float64(cfg.EventsPerSecond))
	total := int(cfg.Duration / interval)
	slots := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	next := 0 // events so far, to spread them over the groups
	late := 0
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				wg.Wait()
				return DeliveriesResult{}, ctx.Err()
			}
		}
		select {
		case slots <- struct{}{}:
		default:
			late++
			slots <- struct{}{}
		}
		first := next
		next += cfg.EventsPerDelivery
		body := deliveryBody(cfg.EventsPerDelivery, func(j int) string {
			return cfg.AccountGroups[(first+j)%len(cfg.AccountGroups)]
		})
		wg.Go(func() {
			defer func() { <-slots }()
			s.post(ctx, body, cfg.EventsPerDelivery)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	return DeliveriesResult{
		Deliveries:      s.deliveries,
		Events:          s.events,
		Failed:          s.failed,
		Errors:          s.errs,
		Late:            late,
		Elapsed:         elapsed,
		EventsPerSecond: float64(s.events) / elapsed.Seconds(),
		Latency:         summarize(s.latency),
	}, nil
}

// groupIDs is n fresh account group ids.
func groupIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}
