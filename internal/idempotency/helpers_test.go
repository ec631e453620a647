package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
)

// testTimeout bounds every wait of a test, so a bug fails the test instead
// of hanging it; nothing is expected to take this long.
const testTimeout = 30 * time.Second

// startServer runs a NATS server with JetStream on loopback, its store
// under a test directory.
func startServer(t testing.TB, syncAlways bool) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		ServerName: "idempotency-test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		SyncAlways: syncAlways,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// backendURL is the NATS URL of be: a fresh embedded server, or the
// external one.
func backendURL(t *testing.T, be eventstest.Backend) string {
	t.Helper()
	if be.URL == "" {
		return startServer(t, false).ClientURL()
	}
	return be.URL
}

// hostPort is the host:port of a nats:// URL, for a TCP proxy to it.
func hostPort(t *testing.T, natsURL string) string {
	t.Helper()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// connect opens a connection of its own, as one gateway replica has, and
// closes it when the test ends.
func connect(t testing.TB, natsURL string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(natsURL, append([]nats.Option{nats.Name("idempotency-test")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// reconnecting are connection options for a replica that rides out a NATS
// outage.
func reconnecting() []nats.Option {
	return []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testConfig is a configuration on a bucket of the test's own, deleted at
// the end on an external server. Lease and renewal keep their defaults: long
// enough that a loaded machine never takes over a live owner.
func testConfig(t testing.TB, natsURL string) Config {
	t.Helper()
	cfg := Config{Bucket: "IDEMPOTENCY_TEST_" + randomSuffix()}
	t.Cleanup(func() { deleteBucket(t, natsURL, cfg.Bucket) })
	return cfg
}

// shortLease makes a lease expire quickly, for tests where an owner dies.
func shortLease(cfg Config) Config {
	cfg.Lease = 400 * time.Millisecond
	cfg.RenewEvery = 100 * time.Millisecond
	cfg.RequestTimeout = 500 * time.Millisecond
	return cfg
}

func deleteBucket(t testing.TB, natsURL, bucket string) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return // an embedded server already gone takes its buckets with it
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Logf("cleanup: deleting bucket %s: %v", bucket, err)
	}
}

func openStore(t testing.TB, js jetstream.JetStream, cfg Config, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, js, cfg, append([]Option{WithLogger(logtest.Logger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil polls cond until it holds, failing the test after testTimeout.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// request is a fake upstream call: it counts its runs, can be held until
// the test lets it go, and answers a fixed outcome.
type request struct {
	outcome []byte
	final   bool
	err     error

	calls   atomic.Int32
	started chan struct{} // gets a value each time run starts
	hold    chan struct{} // when not nil, run waits until it is closed
	once    sync.Once
}

func newRequest(outcome string) *request {
	return &request{outcome: []byte(outcome), final: true, started: make(chan struct{}, 100)}
}

// held makes run wait until let is called.
func (r *request) held() *request {
	r.hold = make(chan struct{})
	return r
}

func (r *request) let() { r.once.Do(func() { close(r.hold) }) }

func (r *request) run(ctx context.Context) ([]byte, bool, error) {
	r.calls.Add(1)
	r.started <- struct{}{}
	if r.hold != nil {
		<-r.hold
	}
	return r.outcome, r.final, r.err
}

func (r *request) waitStarted(t testing.TB) {
	t.Helper()
	select {
	case <-r.started:
	case <-time.After(testTimeout):
		t.Fatal("run did not start")
	}
}

// stored reads what the bucket holds for key.
func stored(t testing.TB, s *Store, key string) record {
	t.Helper()
	k, err := kvKey(key)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.kv.Get(testContext(t), k)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

type doResult struct {
	res Result
	err error
}

// doAsync runs Do in a goroutine; the test reads its result from the
// channel before it ends.
func doAsync(ctx context.Context, s *Store, key string, fp []byte, r *request) <-chan doResult {
	ch := make(chan doResult, 1)
	go func() {
		res, err := s.Do(ctx, key, fp, r.run)
		ch <- doResult{res, err}
	}()
	return ch
}

func receive(t testing.TB, ch <-chan doResult) doResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testTimeout):
		t.Fatal("Do did not return")
		return doResult{}
	}
}
