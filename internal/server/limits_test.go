package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// TestWebhookListener: with its own listener, the webhook receiver is
// served there and only there, and nothing else is served there.
func TestWebhookListener(t *testing.T) {
	t.Parallel()
	signer := eventstest.NewWebhookSigner(t, "test-kid", httpsig.Version6)
	g := servertest.Start(t, servertest.WithWebhookListener(), servertest.WithWebhookKeys(signer.Keys()))
	if g.WebhookBaseURL == g.BaseURL {
		t.Fatal("no webhook listener")
	}
	body := eventstest.DeliveryBody(t, eventstest.RawEvent("TOPUP.SETTLED", time.Now(), map[string]any{"id": uuid.NewString(), "account_group_id": uuid.NewString()}))
	if code, resp := deliver(t, g, signer, body, nil); code != http.StatusOK {
		t.Fatalf("delivery to the webhook listener: %d %s", code, resp)
	}
	// The API listener does not take deliveries ...
	req := eventstest.NewDelivery(t, g.BaseURL+server.WebhookPath, signer, body)
	if code := doStatus(t, g.HTTP, req); code != http.StatusNotFound {
		t.Errorf("delivery to the API listener: %d, want 404", code)
	}
	// ... and the webhook listener serves nothing else.
	for _, path := range []string{"/healthz", "/openapi.json", "/v1/account_groups/" + uuid.NewString() + "/payments/cash_balance"} {
		req, _ := http.NewRequest(http.MethodGet, g.WebhookBaseURL+path, nil)
		if code := doStatus(t, g.HTTP, req); code != http.StatusNotFound {
			t.Errorf("GET %s on the webhook listener: %d, want 404", path, code)
		}
	}
	req, _ = http.NewRequest(http.MethodGet, g.BaseURL+"/healthz", nil)
	if code := doStatus(t, g.HTTP, req); code != http.StatusOK {
		t.Errorf("healthz on the API listener: %d", code)
	}
}

func doStatus(t *testing.T, c *http.Client, req *http.Request) int {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// stallBody sends a request whose Content-Length promises more than is
// sent, from local address from, and returns the connection.
func stallBody(t *testing.T, from, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", path)
	return c
}

// TestSlowBody: a request that stalls mid-body is answered or closed once
// the body timeout passes, on every HTTP listener, and does not hold its
// connection for ever.
func TestSlowBody(t *testing.T) {
	t.Parallel()
	const bodyTimeout = 300 * time.Millisecond
	g := servertest.Start(t, servertest.WithWebhookListener(),
		servertest.WithServerOptions(server.WithLimits(server.Limits{BodyTimeout: bodyTimeout})))
	for _, tc := range []struct{ name, addr, path string }{
		{"REST", strings.TrimPrefix(g.BaseURL, "http://"), "/v1/payments/topups"},
		{"webhook", strings.TrimPrefix(g.WebhookBaseURL, "http://"), server.WebhookPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := stallBody(t, "127.0.0.1", tc.addr, tc.path)
			defer c.Close()
			// Far beyond the timeout: the bound is that it ends at all.
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := io.ReadAll(c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the stalled request was neither answered nor closed")
			}
			if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 4") {
				t.Errorf("answer %q, want a 4xx or nothing", firstLine(b))
			}
		})
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}

// TestStalledConnections: thousands of connections held open by one client
// (stalled bodies on the HTTP and webhook listeners, silence on gRPC) leave
// health checks, gRPC calls and webhook deliveries of others working.
func TestStalledConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	t.Parallel()
	signer := eventstest.NewWebhookSigner(t, "test-kid", httpsig.Version6)
	g := servertest.Start(t, servertest.WithWebhookListener(), servertest.WithWebhookKeys(signer.Keys()),
		servertest.WithServerOptions(server.WithLimits(server.Limits{MaxConnsPerIP: 100, MaxConns: 1000, BodyTimeout: 5 * time.Second})))
	const attacker = "127.0.0.2" // all of 127/8 is loopback; the test's own calls come from 127.0.0.1
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for _, target := range []struct{ addr, path string }{
		{strings.TrimPrefix(g.BaseURL, "http://"), "/v1/payments/topups"},
		{strings.TrimPrefix(g.WebhookBaseURL, "http://"), server.WebhookPath},
		{g.Server.GRPCAddr(), ""},
	} {
		for range 1000 {
			wg.Go(func() {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attacker)}, Timeout: 5 * time.Second}
				c, err := d.Dial("tcp", target.addr)
				if err != nil {
					return // refused or dropped: what the limits are for
				}
				if target.path != "" {
					fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{", target.path)
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	// The gateway holds at most MaxConnsPerIP of them per listener: the
	// rest were closed at once (EOF), not kept until a timeout.
	held := 0
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					mu.Lock()
					held++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if held > 3*100 {
		t.Errorf("the gateway holds %d of one client's connections, want at most 100 per listener", held)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.BaseURL+"/healthz", nil)
	if code := doStatus(t, g.HTTP, req); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	if _, err := g.CashBalance().GetCashBalance(ctx, &gatewayv1.GetCashBalanceRequest{AccountGroupId: uuid.NewString()}); err != nil {
		t.Errorf("gRPC call: %v", err)
	}
	body := eventstest.DeliveryBody(t, eventstest.RawEvent("TOPUP.SETTLED", time.Now(), map[string]any{"id": uuid.NewString(), "account_group_id": uuid.NewString()}))
	if code, resp := deliver(t, g, signer, body, nil); code != http.StatusOK {
		t.Errorf("webhook delivery: %d %s", code, resp)
	}
}

// TestStreamLimit: streams over the gateway's limit are refused with
// RESOURCE_EXHAUSTED and RetryInfo; a slot frees when a stream ends.
func TestStreamLimit(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, servertest.WithServerOptions(server.WithLimits(server.Limits{MaxStreams: 2})))
	open := func() (gatewayv1.TopupService_WatchTopupEventsClient, context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := g.Topups().WatchTopupEvents(ctx, &gatewayv1.WatchTopupEventsRequest{})
		if err == nil {
			_, err = s.Recv() // the first heartbeat: the stream is in place
		}
		return s, cancel, err
	}
	_, c1, err := open()
	if err != nil {
		t.Fatal(err)
	}
	_, c2, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer c2()
	_, c3, err := open()
	defer c3()
	if status.Code(err) != codes.ResourceExhausted || !hasRetryInfo(err) {
		t.Fatalf("third stream: %v, want ResourceExhausted with RetryInfo", err)
	}
	c1()
	servertest.WaitUntil(t, func() bool {
		_, c, err := open()
		c()
		return err == nil
	})
}

func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}
