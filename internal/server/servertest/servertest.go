// Package servertest starts a complete gateway against the Upvest simulator
// for tests: the simulator served on a loopback port, an upstream client
// with a freshly generated P-256 tenant key registered in it, the gateway's
// gRPC and HTTP listeners on port 0, and its event log (embedded, under
// t.TempDir(); or on an external NATS with WithNATS) fed by the simulator's
// real, signed webhook deliveries.
//
//	g := servertest.Start(t)
//	resp, err := g.Topups().CreateTopup(ctx, req)   // over gRPC
//	res, body := g.Do(t, "GET", "/v1/payments/topups/"+id, "", nil) // over REST
//	recs := g.Sim.Requests()                         // what Upvest saw
//
// The admin listener is at AdminBaseURL; WithMetrics and WithTracing give
// the gateway metrics to serve there and a tracer provider.
//
// Everything is torn down by t.Cleanup.
package servertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/idempotency"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/tlsconfig"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// TestRetryPolicy is the client retry policy of a test gateway: the default
// number of attempts, with backoffs short enough for tests.
var TestRetryPolicy = upstream.RetryPolicy{MaxAttempts: 4, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Multiplier: 2}

// Gateway is a running simulator and gateway pair.
type Gateway struct {
	Sim    *upvestsim.Sim
	SimURL string // base URL of the simulator

	// The tenant's credentials, as registered in the simulator.
	ClientID     string
	ClientSecret string
	KeyID        string
	Key          *ecdsa.PrivateKey

	Upstream *upstream.Client // the client the gateway calls Upvest with
	Server   *server.Server

	// The event log (nil WithoutEvents), the broker under it, its
	// configuration, and the simulator's way to the gateway's webhook
	// receiver.
	Events     *events.Log
	Quarantine *events.Quarantine
	Broker     *broker.Broker
	// Idempotency is the gateway's idempotency store, on Broker.
	Idempotency *idempotency.Store
	LogConfig   events.LogConfig
	Webhooks    *WebhookFront

	Conn    *grpc.ClientConn // a gRPC connection to the gateway
	BaseURL string           // the gateway's HTTP face, e.g. http://127.0.0.1:41234
	// WebhookBaseURL is where the webhook receiver listens: BaseURL, or the
	// webhook listener's address WithWebhookListener.
	WebhookBaseURL string
	HTTP           *http.Client // a plain client for BaseURL
	// AdminBaseURL is the admin listener: /metrics, /debug/pprof/,
	// /healthz, /readyz (plain HTTP, like the gateway's own).
	AdminBaseURL string
	// Metrics are the gateway's, WithMetrics; nil without.
	Metrics *metrics.Metrics

	stop     context.CancelFunc
	served   chan error
	stopOnce sync.Once
	stopErr  error
}

// An Option adjusts what Start builds.
type Option interface{ applyStart(*config) }

type optionFunc func(*config)

func (f optionFunc) applyStart(c *config) { f(c) }

type config struct {
	simCfg      []func(*upvestsim.Config)
	upstreamOpt []upstream.Option
	scopes      []string
	serverOpt   []server.Option
	webhookLis  bool
	replicaOf   *Gateway
	logger      *slog.Logger
	tls         *tlsconfig.Server
	clientTLS   *tls.Config
	events      eventsConfig
	metrics     *metrics.Metrics
	tracer      trace.TracerProvider
	propagator  propagation.TextMapPropagator
}

// WithMetrics records the gateway's metrics (its server's, its upstream
// client's, its webhook receiver's) in m, served at AdminBaseURL+"/metrics".
func WithMetrics(m *metrics.Metrics) Option {
	return optionFunc(func(c *config) { c.metrics = m })
}

// WithTracing traces the gateway's server and upstream client with tp,
// reading and sending trace context with propagator.
func WithTracing(tp trace.TracerProvider, propagator propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.tracer, c.propagator = tp, propagator })
}

// WithSimConfig adjusts the simulator's configuration before it starts.
func WithSimConfig(f func(*upvestsim.Config)) Option {
	return optionFunc(func(c *config) { c.simCfg = append(c.simCfg, f) })
}

// WithUpstreamOptions adds options to the gateway's Upvest client (after
// the test defaults, so they win).
func WithUpstreamOptions(opts ...upstream.Option) Option {
	return optionFunc(func(c *config) { c.upstreamOpt = append(c.upstreamOpt, opts...) })
}

// WithScopes sets the OAuth2 scopes the gateway's client asks for (default
// upstream.DefaultScopes), e.g. to provoke 403s.
func WithScopes(scopes ...string) Option {
	return optionFunc(func(c *config) { c.scopes = scopes })
}

// WithServerOptions adds options to the gateway server.
func WithServerOptions(opts ...server.Option) Option {
	return optionFunc(func(c *config) { c.serverOpt = append(c.serverOpt, opts...) })
}

// WithReplicaOf makes the gateway a second replica beside first: it calls
// first's simulator with first's credentials (the simulator keeps
// delivering webhooks to first). Together with WithNATS and
// WithIdempotencyBucket the two share their log and their store.
func WithReplicaOf(first *Gateway) Option {
	return optionFunc(func(c *config) { c.replicaOf = first })
}

// WithTLS serves the gateway over TLS from srv (server.WithTLS), and makes
// Conn and HTTP clients that present client (its root CAs must trust the
// gateway's certificate; its certificate, if any, identifies the caller).
// BaseURL and WebhookBaseURL are https.
func WithTLS(srv *tlsconfig.Server, client *tls.Config) Option {
	return optionFunc(func(c *config) { c.tls, c.clientTLS = srv, client })
}

// WithWebhookListener gives the gateway its own webhook listener
// (server.Config.WebhookListener); the simulator delivers there, and
// WebhookBaseURL is its address.
func WithWebhookListener() Option {
	return optionFunc(func(c *config) { c.webhookLis = true })
}

// WithLogger sends the gateway's and the simulator's logs to l (default:
// discarded).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// Start starts the simulator and the gateway and stops both when the test
// ends. It fails the test on any set-up error.
func Start(t testing.TB, opts ...Option) *Gateway {
	t.Helper()
	var c config
	for _, o := range opts {
		if o != nil {
			o.applyStart(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("servertest: tenant key: %v", err)
	}
	g := &Gateway{
		ClientID:     uuid.NewString(),
		ClientSecret: randomSecret(),
		KeyID:        "servertest-" + uuid.NewString()[:8],
		Key:          key,
	}

	// The listeners first, so the simulator can be pointed at the gateway.
	grpcLis := listen(t)
	httpLis := listen(t)
	adminLis := listen(t)
	g.AdminBaseURL = "http://" + adminLis.Addr().String()
	g.Metrics = c.metrics
	scheme := "http://"
	if c.tls != nil {
		scheme = "https://"
	}
	g.BaseURL = scheme + httpLis.Addr().String()
	g.WebhookBaseURL = g.BaseURL
	var webhookLis net.Listener
	if c.webhookLis {
		webhookLis = listen(t)
		g.WebhookBaseURL = scheme + webhookLis.Addr().String()
	}

	if first := c.replicaOf; first != nil {
		g.ClientID, g.ClientSecret, g.KeyID, g.Key = first.ClientID, first.ClientSecret, first.KeyID, first.Key
		key = first.Key
		g.Sim, g.SimURL = first.Sim, first.SimURL
	} else {
		g.startSimulator(t, &c, key)
	}

	signer, err := httpsig.NewSigner(key, g.KeyID)
	if err != nil {
		t.Fatalf("servertest: signer: %v", err)
	}
	upOpts := []upstream.Option{upstream.WithRetry(TestRetryPolicy), upstream.WithLogger(c.logger), upstream.WithMetrics(c.metrics)}
	if c.tracer != nil {
		upOpts = append(upOpts, upstream.WithTracing(c.tracer, c.propagator))
	}
	upOpts = append(upOpts, c.upstreamOpt...)
	g.Upstream, err = upstream.New(upstream.Config{
		BaseURL:      g.SimURL,
		ClientID:     g.ClientID,
		ClientSecret: g.ClientSecret,
		Signer:       signer,
		Scopes:       c.scopes,
	}, upOpts...)
	if err != nil {
		t.Fatalf("servertest: upstream client: %v", err)
	}

	srvOpts := []server.Option{server.WithLogger(c.logger), server.WithShutdownTimeout(5 * time.Second), server.WithMetrics(c.metrics)}
	if c.tracer != nil {
		srvOpts = append(srvOpts, server.WithTracing(c.tracer, c.propagator))
	}
	if c.tls != nil {
		srvOpts = append(srvOpts, server.WithTLS(c.tls))
	}
	if !c.events.disabled {
		srvOpts = append(srvOpts, c.events.open(t, g, c.logger)...)
	}
	srvOpts = append(srvOpts, c.serverOpt...)
	g.Server, err = server.New(server.Config{Upstream: g.Upstream, GRPCListener: grpcLis, HTTPListener: httpLis, WebhookListener: webhookLis,
		AdminListener: adminLis}, srvOpts...)
	if err != nil {
		t.Fatalf("servertest: server: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	g.stop, g.served = stop, make(chan error, 1)
	go func() { g.served <- g.Server.Serve(ctx) }()
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("servertest: %v", err)
		}
	})

	creds := insecure.NewCredentials()
	if c.clientTLS != nil {
		creds = credentials.NewTLS(c.clientTLS)
	}
	g.Conn, err = grpc.NewClient("passthrough:///"+g.Server.GRPCAddr(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("servertest: gRPC client: %v", err)
	}
	g.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: c.clientTLS}}
	t.Cleanup(func() {
		g.Conn.Close()
		g.HTTP.CloseIdleConnections()
	})
	return g
}

// startSimulator starts the simulator of g, registered with g's
// credentials and key, delivering its webhooks to g.
func (g *Gateway) startSimulator(t testing.TB, c *config, key *ecdsa.PrivateKey) {
	t.Helper()
	simCfg := upvestsim.Config{
		ClientID:           g.ClientID,
		ClientSecret:       g.ClientSecret,
		TenantKeys:         map[string]crypto.PublicKey{g.KeyID: key.Public()},
		Logger:             c.logger,
		WebhookBackoffUnit: 10 * time.Millisecond,
	}
	if !c.events.disabled {
		g.Webhooks = newWebhookFront(t, g.WebhookBaseURL+server.WebhookPath)
		simCfg.WebhookURL = g.Webhooks.URL
	}
	for _, f := range c.simCfg {
		f(&simCfg)
	}
	sim, err := upvestsim.New(simCfg)
	if err != nil {
		t.Fatalf("servertest: simulator: %v", err)
	}
	simSrv := httptest.NewServer(sim)
	g.Sim, g.SimURL = sim, simSrv.URL
	t.Cleanup(func() {
		sim.Close()
		// Close waits for requests in progress; a test may leave one
		// stuck in an injected delay.
		simSrv.CloseClientConnections()
		simSrv.Close()
	})
}

// Stop shuts the gateway down gracefully (as on SIGTERM) and returns what
// Serve returned; later calls return the same. The simulator keeps running
// until the test ends.
func (g *Gateway) Stop() error {
	g.stopOnce.Do(func() {
		g.stop()
		select {
		case err := <-g.served:
			if err != nil {
				g.stopErr = fmt.Errorf("Serve: %w", err)
			}
		case <-time.After(15 * time.Second):
			g.stopErr = errors.New("Serve did not return after shutdown")
		}
	})
	return g.stopErr
}

// The gRPC clients of the four services.

func (g *Gateway) VirtualCash() gatewayv1.VirtualCashServiceClient {
	return gatewayv1.NewVirtualCashServiceClient(g.Conn)
}
func (g *Gateway) Topups() gatewayv1.TopupServiceClient {
	return gatewayv1.NewTopupServiceClient(g.Conn)
}
func (g *Gateway) Payments() gatewayv1.PaymentsServiceClient {
	return gatewayv1.NewPaymentsServiceClient(g.Conn)
}
func (g *Gateway) CashBalance() gatewayv1.CashBalanceServiceClient {
	return gatewayv1.NewCashBalanceServiceClient(g.Conn)
}

// Do sends a REST request to the gateway (body, if not empty, as JSON) and
// returns the response with its body read.
func (g *Gateway) Do(t testing.TB, method, path, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.BaseURL+path, rd)
	if err != nil {
		t.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := g.HTTP.Do(req)
	if err != nil {
		t.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("servertest: %s %s: reading the body: %v", method, path, err)
	}
	return resp, b
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: listen: %v", err)
	}
	return l
}

func randomSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WaitUntil polls cond until it holds, failing the test after 5 s: for state
// the simulator or the gateway reaches asynchronously.
func WaitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
