package idempotency

import (
	"testing"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// An owner that dies mid-run (here: its NATS connection goes, so its
// renewals stop, as when the process is killed) is taken over by a waiter
// once its lease has gone unrenewed; the request runs once more, and its
// outcome is the one every later caller gets.
func TestDeadOwnerIsTakenOver(t *testing.T) {
	t.Parallel()
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		cfg := shortLease(testConfig(t, u))
		ncA, jsA := connect(t, u)
		_, jsB := connect(t, u)
		a, b := openStore(t, jsA, cfg), openStore(t, jsB, cfg)
		ctx, key := testContext(t), newKey()

		runA := newRequest(`{"id":"from-a"}`).held()
		doneA := doAsync(ctx, a, key, fpA, runA)
		runA.waitStarted(t)
		ncA.Close()

		runB := newRequest(`{"id":"from-b"}`)
		res, err := b.Do(ctx, key, fpA, runB.run)
		if err != nil || res.Source != TookOver || string(res.Outcome) != `{"id":"from-b"}` {
			t.Fatalf("waiter = %+v (%s), %v; want a takeover", res, res.Outcome, err)
		}
		if st := b.Stats(); st.Waits != 1 || st.Takeovers != 1 || st.Runs != 1 {
			t.Fatalf("waiter's stats: %+v", st)
		}

		// The dead owner's run ends; it cannot record anything.
		runA.let()
		if got := receive(t, doneA); got.err != nil {
			t.Fatalf("dead owner's Do: %v", got.err)
		}
		if st := a.Stats(); st.Unrecorded != 1 {
			t.Fatalf("dead owner's stats: %+v", st)
		}
		res, err = b.Do(ctx, key, fpA, newRequest("must not run").run)
		if err != nil || res.Source != Replayed || string(res.Outcome) != `{"id":"from-b"}` {
			t.Fatalf("after the takeover: %+v (%s), %v", res, res.Outcome, err)
		}
	})
}

// An owner cut off from NATS (not dead) loses its lease to a waiter, then
// comes back and finishes late. Whichever final outcome is recorded first
// stays: a late write never replaces a recorded outcome, and both callers
// return the recorded one.
func TestLateOwnerDoesNotReplaceRecordedOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// takerFirst: the new owner records its outcome before the old one
		// finishes; else the old one finishes while the new one still runs.
		takerFirst bool
		want       string
	}{
		{"new owner finishes first", true, `{"id":"from-b"}`},
		{"old owner finishes first", false, `{"id":"from-a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
				u := backendURL(t, be)
				cfg := shortLease(testConfig(t, u))
				proxy := eventstest.NewTCPProxy(t, hostPort(t, u))
				ncA, jsA := connect(t, proxy.URL(), reconnecting()...)
				_, jsB := connect(t, u)
				a, b := openStore(t, jsA, cfg), openStore(t, jsB, cfg)
				ctx, key := testContext(t), newKey()

				runA := newRequest(`{"id":"from-a"}`).held()
				doneA := doAsync(ctx, a, key, fpA, runA)
				runA.waitStarted(t)
				proxy.SetDown(true)

				runB := newRequest(`{"id":"from-b"}`)
				if !tt.takerFirst {
					runB.held()
				}
				doneB := doAsync(ctx, b, key, fpA, runB)
				runB.waitStarted(t) // B took the entry over
				var resB doResult
				if tt.takerFirst {
					resB = receive(t, doneB)
				}

				proxy.SetDown(false)
				waitUntil(t, "the old owner is reconnected", ncA.IsConnected)
				runA.let()
				resA := receive(t, doneA)
				if !tt.takerFirst {
					runB.let()
					resB = receive(t, doneB)
				}

				for name, r := range map[string]doResult{"old owner": resA, "new owner": resB} {
					if r.err != nil || string(r.res.Outcome) != tt.want {
						t.Errorf("%s: %+v (%s), %v; want %s", name, r.res, r.res.Outcome, r.err, tt.want)
					}
				}
				if rec := stored(t, b, key); rec.State != stateDone || string(rec.Outcome) != tt.want {
					t.Errorf("stored %s %s, want done %s", rec.State, rec.Outcome, tt.want)
				}
				if runA.calls.Load() != 1 || runB.calls.Load() != 1 {
					t.Errorf("runs: old owner %d, new owner %d", runA.calls.Load(), runB.calls.Load())
				}
			})
		})
	}
}

// An in-flight entry that names a Store as its owner while that Store runs
// nothing under it comes from one of its writes whose answer was lost: that
// Store takes it over at once. Another Store cannot tell it from a live
// owner's, and waits for the lease.
func TestOrphanOfLostWrite(t *testing.T) {
	t.Parallel()
	u := startServer(t, false).ClientURL()
	cfg := shortLease(testConfig(t, u))
	_, js1 := connect(t, u)
	_, js2 := connect(t, u)
	s1, s2 := openStore(t, js1, cfg), openStore(t, js2, cfg)
	ctx := testContext(t)

	for _, tt := range []struct {
		name      string
		s         *Store
		wantWaits uint64
	}{
		{"the Store that wrote it", s1, 0},
		{"another Store", s2, 1},
	} {
		key := newKey()
		k, _ := kvKey(key)
		if _, err := s1.kv.Create(ctx, k, s1.inFlight(fingerprintHash(fpA))); err != nil {
			t.Fatal(err)
		}
		r := newRequest("ok")
		res, err := tt.s.Do(ctx, key, fpA, r.run)
		if err != nil || res.Source != TookOver || r.calls.Load() != 1 {
			t.Fatalf("%s: Do = %+v, %v", tt.name, res, err)
		}
		if st := tt.s.Stats(); st.Waits != tt.wantWaits {
			t.Fatalf("%s: Waits = %d, want %d", tt.name, st.Waits, tt.wantWaits)
		}
	}
}
