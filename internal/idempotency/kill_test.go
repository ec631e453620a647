package idempotency

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// The environment of TestOwnerProcess, set by TestKilledOwnerIsTakenOver.
const (
	ownerEnvURL    = "IDEMPOTENCY_TEST_OWNER_URL"
	ownerEnvBucket = "IDEMPOTENCY_TEST_OWNER_BUCKET"
	ownerEnvKey    = "IDEMPOTENCY_TEST_OWNER_KEY"
	ownerEnvHold   = "IDEMPOTENCY_TEST_OWNER_HOLD" // how long run takes; "forever" blocks
)

// A gateway replica killed with SIGKILL while it owns a request, at any
// instant: before, during or after its run. Another replica's caller with
// the same key is never blocked for good and never refused: it gets the
// dead replica's recorded outcome, or runs the request itself.
func TestKilledOwnerIsTakenOver(t *testing.T) {
	t.Parallel()
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		tests := []struct {
			name string
			hold string
			// killWhenRunning kills the owner once its run has started;
			// else at a random instant from just before its Do, which lands
			// before, during or after the run.
			killWhenRunning bool
		}{
			{"during run", "forever", true},
			{"random instant 1", "10ms", false},
			{"random instant 2", "10ms", false},
			{"random instant 3", "10ms", false},
			{"random instant 4", "10ms", false},
		}
		for _, tt := range tests {
			cfg := shortLease(testConfig(t, u))
			key := newKey()
			owner := startOwner(t, u, cfg.Bucket, key, tt.hold)
			if tt.killWhenRunning {
				owner.waitFor(t, "running")
			} else {
				owner.waitFor(t, "ready")
				time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
			}
			owner.kill(t)

			_, js := connect(t, u)
			s := openStore(t, js, cfg)
			r := newRequest(`{"id":"from-survivor"}`)
			res, err := s.Do(testContext(t), key, fpA, r.run)
			switch {
			case err != nil:
				t.Fatalf("%s: Do after the kill: %v", tt.name, err)
			case res.Source == Replayed && string(res.Outcome) == `{"id":"from-owner"}` && r.calls.Load() == 0:
			case (res.Source == Ran || res.Source == TookOver) && string(res.Outcome) == `{"id":"from-survivor"}` && r.calls.Load() == 1:
			default:
				t.Fatalf("%s: Do after the kill = %+v (%s), runs %d", tt.name, res, res.Outcome, r.calls.Load())
			}
			t.Logf("%s: %s", tt.name, res.Source)
			if tt.killWhenRunning && res.Source != TookOver {
				t.Fatalf("%s: Source %s, want took_over", tt.name, res.Source)
			}
		}
	})
}

// TestOwnerProcess is the replica that TestKilledOwnerIsTakenOver kills: it
// runs only as that test's child process.
func TestOwnerProcess(t *testing.T) {
	u := os.Getenv(ownerEnvURL)
	if u == "" {
		t.Skip("runs only as a child process of TestKilledOwnerIsTakenOver")
	}
	_, js := connect(t, u)
	ctx := context.Background()
	s, err := Open(ctx, js, shortLease(Config{Bucket: os.Getenv(ownerEnvBucket)}))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_, err = s.Do(ctx, os.Getenv(ownerEnvKey), fpA, func(context.Context) ([]byte, bool, error) {
		fmt.Println("running")
		if hold := os.Getenv(ownerEnvHold); hold == "forever" {
			select {}
		} else if d, err := time.ParseDuration(hold); err == nil {
			time.Sleep(d)
		}
		return []byte(`{"id":"from-owner"}`), true, nil
	})
	fmt.Println("done", err)
	select {} // stay alive until killed
}

type ownerProcess struct {
	cmd   *exec.Cmd
	lines chan string
}

func startOwner(t *testing.T, natsURL, bucket, key, hold string) *ownerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerProcess$")
	cmd.Env = append(os.Environ(),
		ownerEnvURL+"="+natsURL, ownerEnvBucket+"="+bucket, ownerEnvKey+"="+key, ownerEnvHold+"="+hold)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ownerProcess{cmd: cmd, lines: make(chan string, 16)}
	t.Cleanup(func() { p.kill(t) })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

func (p *ownerProcess) waitFor(t *testing.T, line string) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("owner process ended before printing %q", line)
			}
			if l == line {
				return
			}
		case <-timeout:
			t.Fatalf("owner process did not print %q", line)
		}
	}
}

// kill sends SIGKILL: no deferred code, no release, no goodbye to NATS.
func (p *ownerProcess) kill(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Logf("killing the owner process: %v", err)
	}
	_ = p.cmd.Wait()
}

// A dead owner's entry is taken over even when every caller's deadline is
// shorter than the lease, as with clients that retry with 5 s deadlines
// against a 10 s lease: the lease runs from when this Store first saw the
// entry's revision, not from each call's start, so the callers' retries
// add up to it instead of each starting it anew. Otherwise the key would
// stay blocked for good.
func TestShortCallersTakeOverADeadOwner(t *testing.T) {
	t.Parallel()
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		u := backendURL(t, be)
		_, js := connect(t, u)
		cfg := shortLease(testConfig(t, u))
		s := openStore(t, js, cfg)
		key := newKey()
		k, err := kvKey(key)
		if err != nil {
			t.Fatal(err)
		}
		// The entry a replica killed mid-run leaves: in flight, never renewed.
		dead := record{Version: recordVersion, State: stateInFlight, Fingerprint: fingerprintHash(fpA),
			Owner: "killed/1/00000000", LeaseMillis: cfg.Lease.Milliseconds()}
		if _, err := s.kv.Create(testContext(t), k, dead.encode()); err != nil {
			t.Fatal(err)
		}

		r := newRequest(`{"id":"from-survivor"}`)
		deadline := time.Now().Add(testTimeout)
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Lease/4)
			res, err := s.Do(ctx, key, fpA, r.run)
			cancel()
			if err == nil {
				if res.Source != TookOver || string(res.Outcome) != `{"id":"from-survivor"}` || r.calls.Load() != 1 {
					t.Fatalf("Do = %+v (%s), runs %d; want took_over", res, res.Outcome, r.calls.Load())
				}
				t.Logf("taken over at attempt %d", attempt)
				return
			}
			// A loaded machine may spend a deadline this short on reading
			// the entry: the caller retries, as after ErrInProgress.
			if !errors.Is(err, ErrInProgress) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("attempt %d: %v, want ErrInProgress (or the deadline) until the lease has passed", attempt, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("still in progress after %d attempts of %v each: the dead owner's key is blocked", attempt, cfg.Lease/4)
			}
		}
	})
}
