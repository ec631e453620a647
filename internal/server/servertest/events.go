package servertest

import (
	"context"
	"crypto"
	"errors"
	"io"
	"log"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/idempotency"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/statusindex"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// eventsConfig is how Start sets up the event log.
type eventsConfig struct {
	disabled     bool
	natsURL      string
	logCfg       []func(*events.LogConfig)
	receiverOpts []webhook.Option
	extraKeys    map[string]crypto.PublicKey
	idemBucket   string
}

// WithoutEvents starts the gateway without an event log: no webhook route,
// and the Watch RPCs answer UNIMPLEMENTED.
func WithoutEvents() Option {
	return optionFunc(func(c *config) { c.events.disabled = true })
}

// WithNATS puts the event log on the NATS server at url instead of an
// embedded one, in a stream and under a subject prefix of its own that are
// deleted when the test ends, so that parallel tests and CI runs sharing
// the server never see each other's events. "" keeps the embedded server.
func WithNATS(url string) Option {
	return optionFunc(func(c *config) { c.events.natsURL = url })
}

// WithLogConfig adjusts the event log's configuration before it is opened
// (e.g. a short MaxAge).
func WithLogConfig(f func(*events.LogConfig)) Option {
	return optionFunc(func(c *config) { c.events.logCfg = append(c.events.logCfg, f) })
}

// WithIdempotencyBucket names the idempotency store's bucket, so that two
// gateways of a test on one NATS (WithNATS) share their store as replicas
// do. By default each test gateway on an external NATS has a bucket of its
// own, deleted when the test ends.
func WithIdempotencyBucket(name string) Option {
	return optionFunc(func(c *config) { c.events.idemBucket = name })
}

// WithReceiverOptions configures the gateway's webhook receiver.
func WithReceiverOptions(opts ...webhook.Option) Option {
	return optionFunc(func(c *config) { c.events.receiverOpts = append(c.events.receiverOpts, opts...) })
}

// WithWebhookKeys makes the receiver accept deliveries signed with keys as
// well as the simulator's, so a test can sign deliveries of its own making.
func WithWebhookKeys(keys map[string]crypto.PublicKey) Option {
	return optionFunc(func(c *config) {
		if c.events.extraKeys == nil {
			c.events.extraKeys = map[string]crypto.PublicKey{}
		}
		maps.Copy(c.events.extraKeys, keys)
	})
}

// open opens the log for g, closed (and on an external NATS deleted) when
// the test ends, and returns the server options that wire it in.
func (ec eventsConfig) open(t testing.TB, g *Gateway, logger *slog.Logger) []server.Option {
	t.Helper()
	sfx := randomSecret()[:12]
	bc := broker.Config{URL: ec.natsURL}
	var cfg events.LogConfig
	if bc.URL == "" {
		// As the gateway runs it by default: durable by group commit.
		bc.DataDir, bc.GroupCommit = t.TempDir(), true
	} else {
		cfg.Stream = "GATEWAY_TEST_" + sfx
		cfg.Subject = "gwtest" + sfx + ".events"
	}
	for _, f := range ec.logCfg {
		f(&cfg)
	}
	if bc.URL != "" {
		// Registered first, so it runs after the log is closed.
		qstream, _ := events.QuarantineNames(cfg)
		t.Cleanup(func() {
			DeleteStream(t, bc.URL, cfg.Stream)
			DeleteStream(t, bc.URL, qstream)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, bc, broker.WithLogger(logger))
	if err != nil {
		t.Fatalf("servertest: broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	l, err := events.Open(ctx, b, cfg, events.WithLogger(logger))
	if err != nil {
		t.Fatalf("servertest: event log: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	q, err := events.OpenQuarantine(ctx, b, cfg, events.WithLogger(logger))
	if err != nil {
		t.Fatalf("servertest: quarantine: %v", err)
	}
	g.Events, g.Quarantine, g.Broker, g.LogConfig = l, q, b, l.Config()

	ic := idempotency.Config{Bucket: ec.idemBucket}
	if bc.URL != "" && ic.Bucket == "" {
		ic.Bucket = "GATEWAY_TEST_IDEMPOTENCY_" + sfx
		t.Cleanup(func() { DeleteStream(t, bc.URL, "KV_"+ic.Bucket) })
	}
	g.Idempotency, err = idempotency.Open(ctx, b.JetStream(), ic, idempotency.WithLogger(logger))
	if err != nil {
		t.Fatalf("servertest: idempotency store: %v", err)
	}

	sc := statusindex.Config{}
	if ic.Bucket != "" {
		sc.Bucket = ic.Bucket + "_STATUS"
		if bc.URL != "" {
			t.Cleanup(func() { DeleteStream(t, bc.URL, "KV_"+sc.Bucket) })
		}
	}
	ix, err := statusindex.Open(ctx, b, sc, statusindex.WithLogger(logger))
	if err != nil {
		t.Fatalf("servertest: status index: %v", err)
	}
	tailCtx, stopTail := context.WithCancel(context.Background())
	tailed := make(chan struct{})
	go func() {
		defer close(tailed)
		if err := ix.Tail(tailCtx, b.JetStream(), l.Config().Stream, l.Config().Subject); err != nil && tailCtx.Err() == nil {
			logger.Error("servertest: status index tail", "err", err)
		}
	}()
	t.Cleanup(func() { stopTail(); <-tailed })

	// Bound to the tenant's client id, as the gateway is to UPVEST_CLIENT_ID.
	recvOpts := append([]webhook.Option{webhook.WithClientID(g.ClientID)}, ec.receiverOpts...)
	opts := []server.Option{server.WithEvents(l, recvOpts...), server.WithQuarantine(q),
		server.WithServiceOptions(service.WithIdempotencyStore(g.Idempotency), service.WithStatusIndex(ix))}
	if len(ec.extraKeys) > 0 {
		extra := maps.Clone(ec.extraKeys)
		opts = append(opts, server.WithWebhookKeys(func(ctx context.Context) (map[string]crypto.PublicKey, error) {
			keys, err := g.Upstream.GetVerifyKeys(ctx)
			if err != nil {
				return nil, err
			}
			maps.Copy(keys, extra)
			return keys, nil
		}))
	}
	return opts
}

// DeleteStream deletes a JetStream stream on the NATS server at url, if it
// exists, reporting failures with t.Logf only.
func DeleteStream(t testing.TB, url, stream string) {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Logf("servertest: deleting stream %s: %v", stream, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Logf("servertest: deleting stream %s: %v", stream, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Logf("servertest: deleting stream %s: %v", stream, err)
	}
}

// WebhookFront stands between the simulator and the gateway's webhook
// receiver, as the network does, so that a test can make deliveries fail
// the ways they fail in production.
type WebhookFront struct {
	URL string // where the simulator delivers

	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	target   *url.URL
	reject   int // deliveries to answer 503 without passing them on
	lose     int // deliveries to pass on, then answer 503
	received int
	passed   int
}

func newWebhookFront(t testing.TB, target string) *WebhookFront {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("servertest: webhook target: %v", err)
	}
	f := &WebhookFront{target: u}
	f.proxy = &httputil.ReverseProxy{
		// The path and Host stay as the simulator signed them.
		Rewrite: func(r *httputil.ProxyRequest) {
			f.mu.Lock()
			to := f.target
			f.mu.Unlock()
			r.Out.URL.Scheme, r.Out.URL.Host = to.Scheme, to.Host
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	f.URL = srv.URL + u.Path
	return f
}

// Retarget passes the deliveries from now on to the gateway at baseURL (its
// webhook receiver at the same path), as a load balancer does once a
// replica is gone.
func (f *WebhookFront) Retarget(baseURL string) {
	u, err := url.Parse(baseURL)
	if err != nil {
		panic("servertest: Retarget: " + err.Error())
	}
	f.mu.Lock()
	f.target = u
	f.mu.Unlock()
}

// RejectNext answers the next n deliveries with 503 without passing them
// on, as a gateway that cannot store them would: the simulator retries each.
func (f *WebhookFront) RejectNext(n int) {
	f.mu.Lock()
	f.reject += n
	f.mu.Unlock()
}

// LoseAnswers passes the next n deliveries on and then answers 503 whatever
// the gateway said, as if its answer were lost on the way: the simulator
// retries deliveries the gateway has already stored.
func (f *WebhookFront) LoseAnswers(n int) {
	f.mu.Lock()
	f.lose += n
	f.mu.Unlock()
}

// Counts returns how many deliveries reached the front and how many of
// those it passed on to the gateway.
func (f *WebhookFront) Counts() (received, passed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received, f.passed
}

func (f *WebhookFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.received++
	reject, lose := f.reject > 0, f.reject == 0 && f.lose > 0
	switch {
	case reject:
		f.reject--
	case lose:
		f.lose--
		f.passed++
	default:
		f.passed++
	}
	f.mu.Unlock()
	switch {
	case reject:
		http.Error(w, "servertest: delivery rejected", http.StatusServiceUnavailable)
	case lose:
		f.proxy.ServeHTTP(httptest.NewRecorder(), r)
		http.Error(w, "servertest: answer lost", http.StatusServiceUnavailable)
	default:
		f.proxy.ServeHTTP(w, r)
	}
}
