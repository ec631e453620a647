package idempotency

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/upvest-gateway/gateway/internal/logtest"
)

// startCluster runs a JetStream cluster of n servers on loopback, each with
// routes to all.
func startCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		ports[i] = freePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("idempotency-test-%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "idempotency-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoSigs:     true,
			NoLog:      true,
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		servers[i] = srv
	}
	for _, srv := range servers {
		if !srv.ReadyForConnections(testTimeout) {
			t.Fatal("NATS cluster did not start")
		}
	}
	return servers
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// On a cluster of three, a bucket of three replicas opens, and replicas
// connected to different servers (whose reads may come from a follower
// that lags) still run a request once; five replicas are refused.
func TestReplicatedBucket(t *testing.T) {
	t.Parallel()
	servers := startCluster(t, 3)
	cfg := Config{Bucket: "IDEMPOTENCY_TEST_" + randomSuffix(), Replicas: 3}
	stores := make([]*Store, len(servers))
	for i, srv := range servers {
		_, js := connect(t, srv.ClientURL())
		// The cluster is ready when it can place three replicas; until it
		// has elected a leader, JetStream requests go unanswered.
		waitUntil(t, "the cluster places three replicas", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s, err := Open(ctx, js, cfg, WithLogger(logtest.Logger(t)))
			stores[i] = s
			return err == nil
		})
	}

	_, js := connect(t, servers[0].ClientURL())
	five := cfg
	five.Bucket += "_5"
	if _, err := Open(testContext(t), js, five.withReplicas(5)); err == nil || !strings.Contains(err.Error(), "5 replicas") {
		t.Fatalf("Open with 5 replicas on 3 servers = %v, want a refusal", err)
	} else {
		t.Log(err)
	}

	const callers = 30
	ctx := testContext(t)
	waits := func() (n uint64) {
		for _, s := range stores {
			n += s.Stats().Waits
		}
		return n
	}
	for range 3 {
		key := newKey()
		r := newRequest(`{"id":"vci-1"}`).held()
		before := waits()
		var wg sync.WaitGroup
		results := make([]doResult, callers)
		for i := range callers {
			wg.Go(func() {
				res, err := stores[i%len(stores)].Do(ctx, key, fpA, r.run)
				results[i] = doResult{res, err}
			})
		}
		r.waitStarted(t)
		waitUntil(t, "every duplicate waits", func() bool { return waits()-before == callers-1 })
		r.let()
		wg.Wait()
		if got := r.calls.Load(); got != 1 {
			t.Fatalf("run called %d times, want 1", got)
		}
		for i, dr := range results {
			if dr.err != nil || string(dr.res.Outcome) != `{"id":"vci-1"}` {
				t.Fatalf("caller %d: %+v, %v", i, dr.res, dr.err)
			}
		}
	}
}

func (c Config) withReplicas(n int) Config {
	c.Replicas = n
	return c
}
