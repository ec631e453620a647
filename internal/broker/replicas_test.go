package broker

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

func openT(t *testing.T, cfg Config) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// On a cluster of three, streams get three replicas unless configured
// otherwise; more replicas than servers are refused. A single server (the
// embedded one, or an external one outside a cluster) gets one, and
// refuses more.
func TestReplicas(t *testing.T) {
	t.Parallel()
	cluster := eventstest.StartCluster(t, 3)
	single := eventstest.StartCluster(t, 1)
	backends := map[string]Config{
		"cluster of 3":                 {URL: cluster.URL()},
		"one server of a cluster of 3": {URL: cluster.Servers[0].ClientURL()},
		"a single server":              {URL: single.URL()},
		"embedded":                     {DataDir: t.TempDir()},
	}
	if u := os.Getenv("GATEWAY_NATS_URL"); u != "" {
		backends["external"] = Config{URL: u}
	}
	for name, cfg := range backends {
		b := openT(t, cfg)
		clustered := strings.Contains(name, "cluster")
		want := map[int]int{0: 1, 1: 1}
		if clustered {
			want = map[int]int{0: 3, 1: 1, 2: 2, 3: 3}
		}
		for req, w := range want {
			if got, err := b.Replicas(req); err != nil || got != w {
				t.Errorf("%s: Replicas(%d) = %d, %v; want %d", name, req, got, err, w)
			}
		}
		refused := []int{-1, 6, 2}
		if clustered {
			refused = []int{-1, 6, 4, 5}
		}
		for _, req := range refused {
			if got, err := b.Replicas(req); err == nil {
				t.Errorf("%s: Replicas(%d) = %d, want an error", name, req, got)
			}
		}
	}
}
