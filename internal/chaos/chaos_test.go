//go:build chaos

package chaos_test

import (
	"context"
	"flag"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

var (
	opsFlag     = flag.Int("chaos.ops", 2000, "operations per run (each a create by 1 to 3 callers, some followed by a cancel)")
	workersFlag = flag.Int("chaos.workers", 48, "operations run at once")
	seedFlag    = flag.Uint64("chaos.seed", 0, "seed of the workload (0: random; the log names the seed used)")
	logsFlag    = flag.String("chaos.logs", "", "directory to keep the processes' logs in (default: a temporary one, removed)")
)

// TestExactlyOnceUnderFaults: thousands of creates and cancels of every
// kind, several callers each, retrying across two replicas against a
// simulator that fails a fifth of the requests: every request_id acts
// once, every caller gets the same answer, and the ledger agrees.
func TestExactlyOnceUnderFaults(t *testing.T) {
	runChaos(t, nil)
}

// TestExactlyOnceUnderKills is the same while the replicas are killed with
// SIGKILL at several points of the run and restarted on the same NATS and
// data directories; once, both at the same time.
func TestExactlyOnceUnderKills(t *testing.T) {
	runChaos(t, killer)
}

// killMarks are the points of the run (shares of its operations done) at
// which the killer kills replicas.
var killMarks = []struct {
	at       float64
	replicas []int
}{{0.10, []int{0}}, {0.25, []int{1}}, {0.40, []int{0, 1}}, {0.55, []int{1}}, {0.70, []int{0}}, {0.85, []int{1}}}

// killer kills and restarts replicas as the run passes its marks, and
// reports how many kills it made.
func killer(ctx context.Context, t *testing.T, c *cluster, progress func() float64) int {
	kills := 0
	for _, m := range killMarks {
		for progress() < m.at {
			select {
			case <-ctx.Done():
				return kills
			case <-time.After(20 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			return kills // the run is over: no longer mid-run
		}
		for _, i := range m.replicas {
			c.gateways[i].kill()
			kills++
		}
		// Down for a moment: callers meet a refused connection, then a
		// replica that knows nothing of what its predecessor was doing.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		for _, i := range m.replicas {
			if _, err := c.gateways[i].run(); err != nil {
				t.Errorf("restart: %v", err)
				return kills
			}
		}
		t.Logf("killed and restarted replicas %v at %.0f%% of the run", m.replicas, 100*progress())
	}
	return kills
}

func runChaos(t *testing.T, chaos func(context.Context, *testing.T, *cluster, func() float64) int) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-chaos.seed=%d repeats the workload, not the interleaving)", seed, seed)
	c := startCluster(t)
	requireRequestID(ctx, t, c)
	w := newWorkload(*opsFlag, *workersFlag, seed)

	start := time.Now()
	funding := w.fund(ctx, c)
	waitFunded(t, c, w.groups)

	var kills int
	var wg sync.WaitGroup
	if chaos != nil {
		chaosCtx, stop := context.WithCancel(ctx)
		defer stop()
		wg.Go(func() { kills = chaos(chaosCtx, t, c, w.progress) })
		w.run(ctx, c)
		stop()
	} else {
		w.run(ctx, c)
	}
	wg.Wait()
	ran := time.Since(start)
	ops := append(funding, w.ops...)
	before := c.ledger(t)
	w.settle(ctx, c, ops)
	if ctx.Err() != nil {
		t.Fatal("the run did not end in time")
	}

	t.Logf("ran in %v, settled in %v; %s; %s", ran.Round(time.Millisecond), (time.Since(start) - ran).Round(time.Millisecond),
		summary(ops), unsettled(before, ops))
	if chaos != nil {
		want := 0
		for _, m := range killMarks {
			want += len(m.replicas)
		}
		if kills != want {
			t.Errorf("%d kills mid-run, want %d: the run ended first", kills, want)
		}
	}
	checkFaults(t, c)
	check(t, c.ledger(t), ops, w.groups)
}

// requireRequestID: the replicas refuse a create without a request_id, as
// they do by default: no retry of it could be safe.
func requireRequestID(ctx context.Context, t *testing.T, c *cluster) {
	t.Helper()
	for i, r := range c.replicas {
		_, err := r.topups.CreateTopup(ctx, &gatewayv1.CreateTopupRequest{AccountGroupId: uuid.NewString(), CashAmount: "1.00", Currency: "EUR"})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("replica %d: a create without request_id: %v, want InvalidArgument", i+1, err)
		}
	}
}

// waitFunded waits for the funding direct debits to be confirmed, so the
// run's withdrawals and decreases find cash.
func waitFunded(t *testing.T, c *cluster, groups []string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		funded := 0
		for _, b := range c.ledger(t).CashBalances {
			if b.AvailableForWithdrawal != "0" {
				funded++
			}
		}
		if funded == len(groups) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d account groups funded after a minute", funded, len(groups))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkFaults: the simulator injected every kind of fault it draws from,
// so the run met each of them.
func checkFaults(t *testing.T, c *cluster) {
	t.Helper()
	var reqs []upvestsim.RequestRecord
	c.control(t, "requests", &reqs)
	seen := map[upvestsim.FaultKind]int{}
	for _, r := range reqs {
		if r.Fault != "" {
			seen[r.Fault]++
		}
	}
	t.Logf("%d upstream requests, faults %v", len(reqs), seen)
	for _, k := range []upvestsim.FaultKind{upvestsim.Fault429, upvestsim.Fault500, upvestsim.Fault503, upvestsim.Fault504,
		upvestsim.FaultDropAfterApply, upvestsim.FaultUnreadableAnswer} {
		if seen[k] == 0 {
			t.Errorf("no %s fault injected", k)
		}
	}
}
