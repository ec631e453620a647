package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
)

// TestHealthFollowsLog: the gRPC health of the services serving Watch RPCs
// follows the event log, as /readyz does: NOT_SERVING while it cannot be
// reached, SERVING once it is back. The server as a whole stays SERVING
// (liveness), as /healthz does. The log goes down two ways: an embedded
// log's stream is deleted and re-created; a NATS reached over TCP is cut
// off by a proxy and restored.
func TestHealthFollowsLog(t *testing.T) {
	quick := servertest.WithServerOptions(server.WithLogCheckInterval(20 * time.Millisecond))
	tests := []struct {
		name  string
		start func(t *testing.T) (*servertest.Gateway, func(down bool))
	}{
		{"embedded, stream deleted", func(t *testing.T) (*servertest.Gateway, func(bool)) {
			g := start(t, eventstest.Backend{Name: "embedded"}, quick)
			return g, func(down bool) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if down {
					if err := g.Broker.JetStream().DeleteStream(ctx, g.LogConfig.Stream); err != nil {
						t.Fatal(err)
					}
					return
				}
				l, err := events.Open(ctx, g.Broker, g.LogConfig)
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
			}
		}},
		{"over TCP, cut off", func(t *testing.T) (*servertest.Gateway, func(bool)) {
			p := eventstest.NewTCPProxy(t, natsHostPort(t))
			g := start(t, eventstest.Backend{Name: "proxied", URL: p.URL()}, quick)
			return g, p.SetDown
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, setDown := tt.start(t)
			hc := healthpb.NewHealthClient(g.Conn)
			health := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
				resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil {
					t.Fatalf("health of %q: %v", svc, err)
				}
				return resp.GetStatus()
			}
			ready := func() int {
				res, _ := g.Do(t, http.MethodGet, "/readyz", "", nil)
				return res.StatusCode
			}
			all := func(want healthpb.HealthCheckResponse_ServingStatus) func() bool {
				return func() bool {
					for _, svc := range service.ServiceNames() {
						if health(svc) != want {
							return false
						}
					}
					return true
				}
			}
			if !all(healthpb.HealthCheckResponse_SERVING)() || ready() != http.StatusOK {
				t.Fatal("not SERVING and ready at start")
			}

			setDown(true)
			waitFor(t, 20*time.Second, "NOT_SERVING with the log down", all(healthpb.HealthCheckResponse_NOT_SERVING))
			if code := ready(); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz with the log down = %d, want 503", code)
			}
			if st := health(""); st != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health of the server with the log down = %v, want SERVING (liveness)", st)
			}
			if res, _ := g.Do(t, http.MethodGet, "/healthz", "", nil); res.StatusCode != http.StatusOK {
				t.Errorf("/healthz with the log down = %d, want 200", res.StatusCode)
			}

			setDown(false)
			waitFor(t, 20*time.Second, "SERVING with the log back", all(healthpb.HealthCheckResponse_SERVING))
			waitFor(t, 20*time.Second, "/readyz 200 with the log back", func() bool { return ready() == http.StatusOK })
		})
	}
}
