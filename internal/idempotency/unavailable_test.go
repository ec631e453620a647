package idempotency

import (
	"context"
	"errors"
	"testing"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// Without NATS the store fails closed: Open and Do return ErrUnavailable
// and nothing runs. When NATS is back, so is the store.
func TestUnavailableFailsClosed(t *testing.T) {
	t.Parallel()
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		cfg := testConfig(t, u)
		ctx := testContext(t)

		t.Run("Open on a closed connection", func(t *testing.T) {
			nc, js := connect(t, u)
			nc.Close()
			if _, err := Open(ctx, js, cfg); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Open = %v, want ErrUnavailable", err)
			}
		})

		t.Run("Do on a closed connection", func(t *testing.T) {
			nc, js := connect(t, u)
			s := openStore(t, js, cfg)
			nc.Close()
			r := newRequest("must not run")
			if _, err := s.Do(ctx, newKey(), fpA, r.run); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Do = %v, want ErrUnavailable", err)
			}
			if err := s.Check(ctx); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Check = %v, want ErrUnavailable", err)
			}
			if r.calls.Load() != 0 {
				t.Fatal("the request ran without the store")
			}
		})

		t.Run("NATS cut off, then back", func(t *testing.T) {
			proxy := eventstest.NewTCPProxy(t, hostPort(t, u))
			nc, js := connect(t, proxy.URL(), reconnecting()...)
			s := openStore(t, js, cfg)
			key := newKey()

			proxy.SetDown(true)
			r := newRequest(`{"id":"topup-1"}`)
			if _, err := s.Do(ctx, key, fpA, r.run); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Do while cut off = %v, want ErrUnavailable", err)
			}
			if r.calls.Load() != 0 {
				t.Fatal("the request ran without the store")
			}

			// The failed Do's write may have reached NATS after all (sent
			// as the connection went, or replayed from the client's
			// reconnect buffer): the retry then finds an in-flight entry of
			// this Store's that nothing runs, and takes it over without
			// waiting for its lease.
			proxy.SetDown(false)
			waitUntil(t, "reconnected", nc.IsConnected)
			res, err := s.Do(ctx, key, fpA, r.run)
			if err != nil || (res.Source != Ran && res.Source != TookOver) || r.calls.Load() != 1 {
				t.Fatalf("Do after NATS is back = %+v, %v", res, err)
			}
			if st := s.Stats(); st.Waits != 0 {
				t.Fatalf("the retry waited for a request nothing runs: %+v", st)
			}
		})
	})
}

// A context that has already ended is reported as such, not as an outage.
func TestEndedContextIsNotUnavailable(t *testing.T) {
	t.Parallel()
	u := startServer(t, false).ClientURL()
	_, js := connect(t, u)
	s := openStore(t, js, testConfig(t, u))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newRequest("must not run")
	_, err := s.Do(ctx, newKey(), fpA, r.run)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || r.calls.Load() != 0 {
		t.Fatalf("Do = %v (runs %d), want context.Canceled only", err, r.calls.Load())
	}
}
