package idempotency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

var (
	fpA = []byte("/upvest.gateway.v1.TopupService/CreateTopup\n{\"cash_amount\":\"100.00\"}")
	fpB = []byte("/upvest.gateway.v1.TopupService/CreateTopup\n{\"cash_amount\":\"200.00\"}")
)

// A finished request is answered from the store, on any replica, without
// running again.
func TestFinishedRequestIsReplayed(t *testing.T) {
	t.Parallel()
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		cfg := testConfig(t, u)
		_, js1 := connect(t, u)
		_, js2 := connect(t, u)
		s1, s2 := openStore(t, js1, cfg), openStore(t, js2, cfg)
		ctx, key := testContext(t), newKey()

		r := newRequest(`{"id":"topup-1"}`)
		res, err := s1.Do(ctx, key, fpA, r.run)
		if err != nil || res.Source != Ran || string(res.Outcome) != `{"id":"topup-1"}` {
			t.Fatalf("first Do = %+v, %v", res, err)
		}
		for i, s := range []*Store{s1, s2, s1} {
			again := newRequest("must not run")
			res, err := s.Do(ctx, key, fpA, again.run)
			if err != nil || res.Source != Replayed || string(res.Outcome) != `{"id":"topup-1"}` {
				t.Fatalf("repeat %d: Do = %+v (%s), %v", i, res, res.Outcome, err)
			}
			if again.calls.Load() != 0 {
				t.Fatalf("repeat %d ran the request", i)
			}
		}
		if got := r.calls.Load(); got != 1 {
			t.Fatalf("run called %d times, want 1", got)
		}
		if st := s1.Stats(); st.Runs != 1 || st.Replays != 2 {
			t.Fatalf("stats of the first replica: %+v", st)
		}
	})
}

// Concurrent duplicates, on one replica or spread over two with their own
// NATS connections, run the request once and all get its outcome.
func TestConcurrentDuplicatesRunOnce(t *testing.T) {
	t.Parallel()
	const callers = 50
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d replicas", replicas), func(t *testing.T) {
			t.Parallel()
			eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
				u := backendURL(t, be)
				cfg := testConfig(t, u)
				stores := make([]*Store, replicas)
				for i := range stores {
					_, js := connect(t, u)
					stores[i] = openStore(t, js, cfg)
				}
				waits := func() (n uint64) {
					for _, s := range stores {
						n += s.Stats().Waits
					}
					return n
				}
				ctx, key := testContext(t), newKey()

				r := newRequest(`{"id":"withdrawal-1"}`).held()
				results := make([]doResult, callers)
				var wg sync.WaitGroup
				for i := range callers {
					wg.Go(func() {
						res, err := stores[i%replicas].Do(ctx, key, fpA, r.run)
						results[i] = doResult{res, err}
					})
				}
				// Every other caller is waiting on the one running.
				r.waitStarted(t)
				waitUntil(t, "every duplicate waits", func() bool { return waits() == callers-1 })
				r.let()
				wg.Wait()

				if got := r.calls.Load(); got != 1 {
					t.Fatalf("run called %d times, want 1", got)
				}
				count := map[Source]int{}
				for i, dr := range results {
					if dr.err != nil || string(dr.res.Outcome) != `{"id":"withdrawal-1"}` {
						t.Fatalf("caller %d: %+v (%s), %v", i, dr.res, dr.res.Outcome, dr.err)
					}
					count[dr.res.Source]++
				}
				if count[Ran] != 1 || count[Waited] != callers-1 {
					t.Fatalf("sources: %v", count)
				}
			})
		})
	}
}

// A key used for a different request is refused without running, whether
// that request is finished, in flight or released.
func TestDifferentRequestUnderSameKeyIsRefused(t *testing.T) {
	t.Parallel()
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		_, js := connect(t, u)
		s := openStore(t, js, testConfig(t, u))
		ctx := testContext(t)

		tests := []struct {
			name  string
			first func(key string) (cleanup func())
		}{
			{"finished", func(key string) func() {
				if _, err := s.Do(ctx, key, fpA, newRequest("ok").run); err != nil {
					t.Fatal(err)
				}
				return func() {}
			}},
			{"in flight", func(key string) func() {
				r := newRequest("ok").held()
				done := doAsync(ctx, s, key, fpA, r)
				r.waitStarted(t)
				return func() { r.let(); receive(t, done) }
			}},
			{"released", func(key string) func() {
				r := newRequest("unknown")
				r.final = false
				if _, err := s.Do(ctx, key, fpA, r.run); err != nil {
					t.Fatal(err)
				}
				return func() {}
			}},
		}
		for _, tt := range tests {
			key := newKey()
			cleanup := tt.first(key)
			other := newRequest("must not run")
			_, err := s.Do(ctx, key, fpB, other.run)
			cleanup()
			if !errors.Is(err, ErrFingerprintMismatch) {
				t.Errorf("%s: Do with another request = %v, want ErrFingerprintMismatch", tt.name, err)
			}
			if other.calls.Load() != 0 {
				t.Errorf("%s: the other request ran", tt.name)
			}
		}
		if got := s.Stats().Conflicts; got != uint64(len(tests)) {
			t.Errorf("Conflicts = %d, want %d", got, len(tests))
		}
	})
}

// A run whose outcome is unknown releases the key: the same request runs
// again at once, a different one is still refused.
func TestUnknownOutcomeReleases(t *testing.T) {
	t.Parallel()
	errDeadline := errors.New("upstream: deadline exceeded after sending")
	tests := []struct {
		name    string
		outcome string
		final   bool
		err     error
	}{
		{"final false", `{"code":"UNAVAILABLE"}`, false, nil},
		{"error", "", true, errDeadline},
	}
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		_, js := connect(t, u)
		s := openStore(t, js, testConfig(t, u))
		ctx := testContext(t)
		for _, tt := range tests {
			key := newKey()
			first := newRequest(tt.outcome)
			first.final, first.err = tt.final, tt.err
			res, err := s.Do(ctx, key, fpA, first.run)
			if err != tt.err || res.Source != Ran || string(res.Outcome) != tt.outcome {
				t.Fatalf("%s: first Do = %+v, %v", tt.name, res, err)
			}
			if rec := stored(t, s, key); rec.State != stateReleased {
				t.Fatalf("%s: entry %s after an unknown outcome", tt.name, rec.State)
			}

			if _, err := s.Do(ctx, key, fpB, newRequest("must not run").run); !errors.Is(err, ErrFingerprintMismatch) {
				t.Fatalf("%s: another request after the release: %v", tt.name, err)
			}
			retry := newRequest(`{"id":"topup-2"}`)
			res, err = s.Do(ctx, key, fpA, retry.run)
			if err != nil || res.Source != TookOver || string(res.Outcome) != `{"id":"topup-2"}` || retry.calls.Load() != 1 {
				t.Fatalf("%s: retry = %+v, %v (runs %d)", tt.name, res, err, retry.calls.Load())
			}
			res, err = s.Do(ctx, key, fpA, newRequest("must not run").run)
			if err != nil || res.Source != Replayed || string(res.Outcome) != `{"id":"topup-2"}` {
				t.Fatalf("%s: after the retry: %+v, %v", tt.name, res, err)
			}
		}
	})
}

// A run that panics releases the key, so it is not blocked for a lease.
func TestPanicReleases(t *testing.T) {
	t.Parallel()
	u := startServer(t, false).ClientURL()
	_, js := connect(t, u)
	s := openStore(t, js, testConfig(t, u))
	ctx, key := testContext(t), newKey()

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		s.Do(ctx, key, fpA, func(context.Context) ([]byte, bool, error) { panic("bug") })
	}()
	if rec := stored(t, s, key); rec.State != stateReleased {
		t.Fatalf("entry %s after a panic", rec.State)
	}
	res, err := s.Do(ctx, key, fpA, newRequest("ok").run)
	if err != nil || res.Source != TookOver {
		t.Fatalf("Do after the panic = %+v, %v", res, err)
	}
}

// A caller waiting for another owner gives up when its own context ends,
// with ErrInProgress, and later gets the outcome.
func TestWaiterBoundedByItsDeadline(t *testing.T) {
	t.Parallel()
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		_, js := connect(t, u)
		s := openStore(t, js, testConfig(t, u))
		ctx, key := testContext(t), newKey()

		r := newRequest(`{"id":"dd-1"}`).held()
		done := doAsync(ctx, s, key, fpA, r)
		r.waitStarted(t)

		for i, why := range []error{context.DeadlineExceeded, context.Canceled} {
			waiterCtx := newEndable(ctx, why)
			waiting := doAsync(waiterCtx, s, key, fpA, newRequest("must not run"))
			waitUntil(t, "the duplicate waits", func() bool { return s.Stats().Waits == uint64(i+1) })
			waiterCtx.end()
			got := receive(t, waiting)
			if !errors.Is(got.err, ErrInProgress) || !errors.Is(got.err, why) {
				t.Fatalf("waiter = %+v, %v; want ErrInProgress and %v", got.res, got.err, why)
			}
		}

		r.let()
		if first := receive(t, done); first.err != nil {
			t.Fatal(first.err)
		}
		res, err := s.Do(ctx, key, fpA, newRequest("must not run").run)
		if err != nil || res.Source != Replayed || !bytes.Equal(res.Outcome, []byte(`{"id":"dd-1"}`)) {
			t.Fatalf("retry after the owner finished = %+v, %v", res, err)
		}
		if r.calls.Load() != 1 {
			t.Fatalf("run called %d times", r.calls.Load())
		}
	})
}

// endable is a context the test ends when it chooses, with the error it
// chooses (a deadline, say), so that no test depends on the machine's speed.
type endable struct {
	context.Context
	why  error
	done chan struct{}
}

func newEndable(parent context.Context, why error) *endable {
	return &endable{Context: parent, why: why, done: make(chan struct{})}
}

func (e *endable) end()                  { close(e.done) }
func (e *endable) Done() <-chan struct{} { return e.done }
func (e *endable) Err() error {
	select {
	case <-e.done:
		return e.why
	default:
		return nil
	}
}

// Keys are compared exactly: the upper- and lower-case spellings of one UUID
// are two keys, which is why the caller lower-cases request_ids.
func TestKeysAreCaseSensitive(t *testing.T) {
	t.Parallel()
	u := startServer(t, false).ClientURL()
	_, js := connect(t, u)
	s := openStore(t, js, testConfig(t, u))
	ctx := testContext(t)

	lower := "2596db3b-0d03-4651-9eda-970910479dfb"
	upper := "2596DB3B-0D03-4651-9EDA-970910479DFB"
	for _, key := range []string{lower, upper} {
		res, err := s.Do(ctx, key, fpA, newRequest(key).run)
		if err != nil || res.Source != Ran {
			t.Fatalf("Do(%s) = %+v, %v; want a run of its own", key, res, err)
		}
	}
}
