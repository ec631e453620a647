package eventstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a NATS cluster with JetStream running in the test process:
// n servers with routes to each other on loopback ports, each with its own
// store, as a production cluster has.
type Cluster struct {
	Servers []*server.Server
}

// StartCluster starts an n-server cluster and waits until JetStream can
// place streams on it; with n = 1, a single server outside any cluster. The
// servers are shut down when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	routePorts := make([]int, n)
	var routes []string
	for i := range routePorts {
		routePorts[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
	}
	c := &Cluster{}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			opts.Cluster = server.ClusterOpts{Name: "gateway-test", Host: "127.0.0.1", Port: routePorts[i]}
			opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("eventstest: cluster server %d: %v", i+1, err)
		}
		srv.Start()
		c.Servers = append(c.Servers, srv)
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	for _, s := range c.Servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("eventstest: a cluster server did not start")
		}
	}
	c.waitForJetStream(t)
	return c
}

// URL is the client URL of every server, comma-separated.
func (c *Cluster) URL() string {
	var urls []string
	for _, s := range c.Servers {
		if s.Running() {
			urls = append(urls, s.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// Server returns the running server named name (n1, n2, ...), or nil.
func (c *Cluster) Server(name string) *server.Server {
	for _, s := range c.Servers {
		if s.Name() == name && s.Running() {
			return s
		}
	}
	return nil
}

// waitForJetStream waits until the cluster has elected its JetStream meta
// leader and can place a stream on every server.
func (c *Cluster) waitForJetStream(t testing.TB) {
	t.Helper()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatalf("eventstest: connecting to the cluster: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		name := fmt.Sprintf("PROBE_%d", time.Now().UnixNano())
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"probe." + name}, Replicas: len(c.Servers), Storage: jetstream.MemoryStorage})
		if err == nil {
			_ = js.DeleteStream(ctx, name)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("eventstest: the cluster's JetStream is not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
