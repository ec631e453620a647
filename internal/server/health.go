package server

import (
	"context"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// DefaultLogCheckInterval is how often the gRPC health of the services that
// serve Watch RPCs is brought in line with the event log.
const DefaultLogCheckInterval = 5 * time.Second

// watchLogHealth keeps the gRPC health of the services serving Watch RPCs in
// line with the event log, as /readyz is: NOT_SERVING while the log cannot be
// reached, SERVING again once it can. The server as a whole ("") stays
// SERVING: it is the liveness check, and restarting the gateway does not
// bring NATS back. It runs until shutdown begins (health.Shutdown then
// reports NOT_SERVING for everything).
func (s *Server) watchLogHealth(ctx context.Context) {
	if s.opts.events == nil {
		return
	}
	t := time.NewTicker(s.opts.logCheckInterval)
	defer t.Stop()
	serving := true
	for {
		check, cancel := context.WithTimeout(ctx, readyCheckTimeout)
		err := s.opts.events.Check(check)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if up := err == nil; up != serving {
			serving = up
			st := healthpb.HealthCheckResponse_SERVING
			if up {
				s.log.Info("event log reachable again: Watch services SERVING", "services", s.watchServices)
			} else {
				st = healthpb.HealthCheckResponse_NOT_SERVING
				s.log.Warn("event log unreachable: Watch services NOT_SERVING", "services", s.watchServices, "err", err)
			}
			for _, name := range s.watchServices {
				s.health.SetServingStatus(name, st)
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
