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
// Everything is torn down by t.Cleanup.
package servertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/server"
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
	LogConfig  events.LogConfig
	Webhooks   *WebhookFront

	Conn    *grpc.ClientConn // a gRPC connection to the gateway
	BaseURL string           // the gateway's HTTP face, e.g. http://127.0.0.1:41234
	HTTP    *http.Client     // a plain client for BaseURL

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
	serverOpt   []func(*Gateway) []server.Option
	webhookPath string
	logger      *slog.Logger
	events      eventsConfig
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
	return optionFunc(func(c *config) {
		c.serverOpt = append(c.serverOpt, func(*Gateway) []server.Option { return opts })
	})
}

// WithServerOptionsFunc adds server options built from the pair under
// construction: Sim, SimURL, the credentials, Upstream and BaseURL are set
// when f runs (e.g. a webhook handler that needs the Upstream client).
func WithServerOptionsFunc(f func(*Gateway) []server.Option) Option {
	return optionFunc(func(c *config) { c.serverOpt = append(c.serverOpt, f) })
}

// WithWebhookDelivery makes the simulator deliver every event to the
// gateway's HTTP listener at path (e.g. "/webhooks/upvest"), through a
// pre-registered, enabled subscription. With the event log (the default)
// the simulator delivers to server.WebhookPath, through Gateway.Webhooks.
func WithWebhookDelivery(path string) Option {
	return optionFunc(func(c *config) { c.webhookPath = path })
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
	g.BaseURL = "http://" + httpLis.Addr().String()

	simCfg := upvestsim.Config{
		ClientID:           g.ClientID,
		ClientSecret:       g.ClientSecret,
		TenantKeys:         map[string]crypto.PublicKey{g.KeyID: key.Public()},
		Logger:             c.logger,
		WebhookBackoffUnit: 10 * time.Millisecond,
	}
	switch {
	case c.webhookPath != "":
		simCfg.WebhookURL = g.BaseURL + c.webhookPath
	case !c.events.disabled:
		g.Webhooks = newWebhookFront(t, g.BaseURL+server.WebhookPath)
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

	signer, err := httpsig.NewSigner(key, g.KeyID)
	if err != nil {
		t.Fatalf("servertest: signer: %v", err)
	}
	upOpts := append([]upstream.Option{upstream.WithRetry(TestRetryPolicy), upstream.WithLogger(c.logger)}, c.upstreamOpt...)
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

	srvOpts := []server.Option{server.WithLogger(c.logger), server.WithShutdownTimeout(5 * time.Second)}
	if !c.events.disabled {
		srvOpts = append(srvOpts, c.events.open(t, g, c.logger)...)
	}
	for _, f := range c.serverOpt {
		srvOpts = append(srvOpts, f(g)...)
	}
	g.Server, err = server.New(server.Config{Upstream: g.Upstream, GRPCListener: grpcLis, HTTPListener: httpLis}, srvOpts...)
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

	g.Conn, err = grpc.NewClient("passthrough:///"+g.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("servertest: gRPC client: %v", err)
	}
	g.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(func() {
		g.Conn.Close()
		g.HTTP.CloseIdleConnections()
	})
	return g
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
