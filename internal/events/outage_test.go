package events

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// proxy is a TCP relay to NATS that a test can cut, as a network partition
// or a NATS restart would.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go p.serve()
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// An external NATS that goes away and comes back: deliveries get 503 while it
// is gone and are stored exactly once when Upvest retries them; a subscriber
// connected throughout misses nothing and sees nothing twice.
func TestExternalOutage(t *testing.T) {
	raw := os.Getenv("GATEWAY_NATS_URL")
	if raw == "" {
		t.Skip("GATEWAY_NATS_URL not set")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	be := backend{name: "external", url: raw}
	cfg := be.config(t)
	cfg.NATSURL = p.url()
	l := openLog(t, cfg)

	signer := newTestSigner(t, "kid-1", httpsig.Version6)
	endpoint := newTestReceiver(t, l, newKeySource(signer), WithAppendTimeout(time.Second))
	ag := uuid.NewString()
	s := startWatch(t, l, Filter{AccountGroupID: ag}, "")

	d1 := []map[string]any{rawEvent("TOPUP.CONFIRMED", ag), rawEvent("CASH_BALANCE.UPDATED", ag)}
	d2 := []map[string]any{rawEvent("TOPUP.SETTLED", ag), rawEvent("CASH_BALANCE.UPDATED", ag)}
	if code, resp := post(t, endpoint, signer, deliveryBody(t, d1...)); code != http.StatusOK {
		t.Fatalf("before the outage: %d %s", code, resp)
	}

	p.setDown(true)
	if code, resp := post(t, endpoint, signer, deliveryBody(t, d2...)); code != http.StatusServiceUnavailable {
		t.Fatalf("during the outage: %d %s, want 503", code, resp)
	}
	p.setDown(false)

	// Upvest retries with backoff until the gateway answers 200.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, resp := post(t, endpoint, signer, deliveryBody(t, d2...))
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the outage: %d %s", code, resp)
		}
		time.Sleep(200 * time.Millisecond)
	}

	var want []string
	for _, e := range append(d1, d2...) {
		want = append(want, e["id"].(string))
	}
	equalIDs(t, msgIDs(s.events(t, 4)), want)
	s.quiet(t, 500*time.Millisecond)
}
