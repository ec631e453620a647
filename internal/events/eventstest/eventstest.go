// Package eventstest holds helpers for the tests of the event log and of
// the gateway around it: the NATS backends a test runs on, a TCP proxy that
// cuts NATS off, and signed webhook deliveries.
package eventstest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// Backend is where a test's event log lives: the embedded NATS server
// always, and the external one named by GATEWAY_NATS_URL when it is set (as
// in CI).
type Backend struct {
	Name string
	URL  string // the NATS URL; "" for the embedded server
}

// Backends returns the embedded backend, and the external one when
// GATEWAY_NATS_URL is set.
func Backends() []Backend {
	bs := []Backend{{Name: "embedded"}}
	if u := os.Getenv("GATEWAY_NATS_URL"); u != "" {
		bs = append(bs, Backend{Name: "external", URL: u})
	}
	return bs
}

// ForEachBackend runs fn once per backend, as parallel subtests.
func ForEachBackend(t *testing.T, fn func(t *testing.T, be Backend)) {
	t.Helper()
	for _, be := range Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, be)
		})
	}
}

// TCPProxy is a TCP relay to NATS that a test can cut, as a network
// partition or a NATS restart would.
type TCPProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

// NewTCPProxy relays a loopback port to target (host:port) until the test
// ends.
func NewTCPProxy(t *testing.T, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCPProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.SetDown(true) })
	go p.serve()
	return p
}

// URL is the proxy's NATS URL.
func (p *TCPProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *TCPProxy) serve() {
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

// SetDown cuts the relay (closing every open connection and refusing new
// ones) or restores it.
func (p *TCPProxy) SetDown(down bool) {
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

// WebhookSigner signs deliveries as Upvest does, with a P-521 key.
type WebhookSigner struct {
	KID    string
	Key    *ecdsa.PrivateKey
	Signer *httpsig.Signer
}

// NewWebhookSigner makes a signer with a fresh key, key id kid and the
// given httpsig version.
func NewWebhookSigner(t testing.TB, kid string, version int) *WebhookSigner {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpsig.NewSigner(key, kid, httpsig.WithVersion(version))
	if err != nil {
		t.Fatal(err)
	}
	return &WebhookSigner{KID: kid, Key: key, Signer: s}
}

// Keys is the key set that verifies s's signatures.
func (s *WebhookSigner) Keys() map[string]crypto.PublicKey {
	return map[string]crypto.PublicKey{s.KID: s.Key.Public()}
}

// Sign signs req, whose body is body.
func (s *WebhookSigner) Sign(req *http.Request, body []byte) error {
	return s.Signer.Sign(req, body)
}

// NewDelivery builds a JSON POST of body to url, signed by s (nil:
// unsigned).
func NewDelivery(t testing.TB, url string, s *WebhookSigner, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s != nil {
		if err := s.Sign(req, body); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

// RawEvent is an upstream event of type typ about object, as the JSON of a
// webhook delivery holds it, with a fresh id.
func RawEvent(typ string, createdAt time.Time, object map[string]any) map[string]any {
	return map[string]any{
		"id":         uuid.NewString(),
		"created_at": createdAt.UTC().Format(time.RFC3339Nano),
		"type":       typ,
		"object":     object,
		"webhook_id": "9df39835-be87-4243-9018-f2500b39cee6",
	}
}

// DeliveryBody is the JSON body of a webhook delivery of events.
func DeliveryBody(t testing.TB, events ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"payload": events})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StartNATS runs a NATS server with JetStream in the test's process, on a
// loopback port, stopped when the test ends, and returns its URL: a NATS
// that several gateways of one test can share, as replicas share a
// cluster, without an external server.
func StartNATS(t testing.TB) string {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatalf("eventstest: NATS server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("eventstest: NATS server did not start")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv.ClientURL()
}
