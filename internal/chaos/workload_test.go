//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// kind is one kind of money movement: how to create it, and how to cancel
// it where Upvest allows that.
type kind struct {
	name   string // as the simulator's ledger names it
	weight int    // share of the operations
	// cancelShare is the share of created resources that get cancelled.
	cancelShare float64
	create      func(ctx context.Context, r replica, o *op, requestID string, opts ...grpc.CallOption) (string, error)
	cancel      func(ctx context.Context, r replica, id string) error
}

var kinds = []*kind{
	{name: upvestsim.KindTopup, weight: 25, cancelShare: 0.6,
		create: func(ctx context.Context, r replica, o *op, requestID string, opts ...grpc.CallOption) (string, error) {
			res, err := r.topups.CreateTopup(ctx, &gatewayv1.CreateTopupRequest{
				RequestId: requestID, AccountGroupId: o.group, CashAmount: o.amount, Currency: "EUR"}, opts...)
			return res.GetTopup().GetId(), err
		},
		cancel: func(ctx context.Context, r replica, id string) error {
			_, err := r.topups.CancelTopup(ctx, &gatewayv1.CancelTopupRequest{TopupId: id})
			return err
		}},
	{name: upvestsim.KindWithdrawal, weight: 25, cancelShare: 0.6,
		create: func(ctx context.Context, r replica, o *op, requestID string, opts ...grpc.CallOption) (string, error) {
			res, err := r.payments.CreateWithdrawal(ctx, &gatewayv1.CreateWithdrawalRequest{
				RequestId: requestID, ReferenceAccountId: o.counterpart, AccountGroupId: o.group, UserId: o.user,
				Amount: o.amount, RemittanceInformation: "Chaos " + o.key[:8]}, opts...)
			return res.GetWithdrawal().GetId(), err
		},
		cancel: func(ctx context.Context, r replica, id string) error {
			_, err := r.payments.CancelWithdrawal(ctx, &gatewayv1.CancelWithdrawalRequest{WithdrawalId: id})
			return err
		}},
	{name: upvestsim.KindDirectDebit, weight: 10,
		create: func(ctx context.Context, r replica, o *op, requestID string, opts ...grpc.CallOption) (string, error) {
			res, err := r.payments.CreateDirectDebit(ctx, &gatewayv1.CreateDirectDebitRequest{
				RequestId: requestID, UserId: o.user, AccountGroupId: o.group, MandateId: o.counterpart,
				CashAmount: o.amount, RemittanceInformation: "Chaos " + o.key[:8]}, opts...)
			return res.GetDirectDebit().GetId(), err
		}},
	{name: upvestsim.KindVirtualCashIncrease, weight: 15,
		create: func(ctx context.Context, r replica, o *op, requestID string, opts ...grpc.CallOption) (string, error) {
			res, err := r.virtualCash.CreateVirtualCashIncrease(ctx, &gatewayv1.CreateVirtualCashIncreaseRequest{
				RequestId: requestID, AccountGroupId: o.group, Amount: o.amount, Currency: "EUR"}, opts...)
			return res.GetVirtualCashIncrease().GetId(), err
		}},
	{name: upvestsim.KindVirtualCashDecrease, weight: 25, cancelShare: 0.6,
		create: func(ctx context.Context, r replica, o *op, requestID string, opts ...grpc.CallOption) (string, error) {
			res, err := r.virtualCash.CreateVirtualCashDecrease(ctx, &gatewayv1.CreateVirtualCashDecreaseRequest{
				RequestId: requestID, AccountGroupId: o.group, Amount: o.amount, Currency: "EUR"}, opts...)
			return res.GetVirtualCashDecrease().GetId(), err
		},
		cancel: func(ctx context.Context, r replica, id string) error {
			_, err := r.virtualCash.CancelVirtualCashDecrease(ctx, &gatewayv1.CancelVirtualCashDecreaseRequest{VirtualCashDecreaseId: id})
			return err
		}},
}

func kindNamed(name string) *kind {
	for _, k := range kinds {
		if k.name == name {
			return k
		}
	}
	panic("no kind " + name)
}

// op is one operation: a create under one request_id, sent by several
// callers at once, and maybe a cancel of what it created, also by several.
type op struct {
	kind   *kind
	key    string // the request_id, lower case (callers may send it in upper case)
	group  string
	amount string
	// user and counterpart (mandate or reference account) are fixed per
	// operation: every caller sends the very same request.
	user, counterpart string

	creates []*outcome // one per caller, then the final retry
	// cancelID is the resource the cancels are for ("" for no cancel).
	cancelID string
	cancels  []*outcome
}

// outcome is what one caller ended with.
type outcome struct {
	code     codes.Code // of the last attempt
	id       string     // the resource's, when OK
	msg      string
	gaveUp   bool // out of patience without an answer for good
	final    bool // the retry after the run, of an operation a caller gave up on
	attempts int
	// keyHeader is the idempotency-key response metadata of the last
	// attempt that had one.
	keyHeader string
}

// answered reports whether the outcome is an answer for good (a success,
// or a refusal that a retry would get again).
func (o *outcome) answered() bool { return !o.gaveUp }

func (o *outcome) String() string {
	s := o.code.String()
	if o.id != "" {
		s += " " + o.id
	}
	if o.gaveUp {
		s += " (gave up)"
	}
	if o.final {
		s += " (final retry)"
	}
	if o.msg != "" && o.code != codes.OK {
		s += ": " + o.msg
	}
	return s
}

// retried are the codes a caller retries with the same request_id (or
// id): the outcome is not known yet, or the call did not get through.
func retried(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// patience is how long a caller keeps trying.
type patience struct {
	attemptTimeout time.Duration
	maxAttempts    int // 0: until the budget is spent
	budget         time.Duration
}

// patient callers retry for long enough to outlast a lease of a killed
// replica (10 s) several times over; impatient ones make one short
// attempt and give up, leaving the outcome to the final retry.
func randomPatience(rng *rand.Rand) patience {
	if rng.IntN(10) == 0 {
		return patience{attemptTimeout: time.Duration(100+rng.IntN(700)) * time.Millisecond, maxAttempts: 1}
	}
	return patience{attemptTimeout: time.Duration(1000+rng.IntN(5000)) * time.Millisecond, budget: 90 * time.Second}
}

// finalPatience is the patience of the retries after the run.
var finalPatience = patience{attemptTimeout: 5 * time.Second, budget: 3 * time.Minute}

// call makes one caller's attempts: each on the other replica than the
// one before, starting at first, until an answer for good or the end of
// its patience.
func (c *cluster) call(ctx context.Context, p patience, first int, attempt func(ctx context.Context, r replica, md *metadata.MD) (string, error)) *outcome {
	o := &outcome{}
	end := time.Now().Add(p.budget)
	wait := 20 * time.Millisecond
	for replicaIndex := first; ; replicaIndex = 1 - replicaIndex {
		o.attempts++
		actx, cancel := context.WithTimeout(ctx, p.attemptTimeout)
		var md metadata.MD
		id, err := attempt(actx, c.replicas[replicaIndex], &md)
		cancel()
		if k := md.Get("idempotency-key"); len(k) > 0 {
			o.keyHeader = k[0]
		}
		st := status.Convert(err)
		o.code, o.id, o.msg = st.Code(), id, st.Message()
		if !retried(o.code) {
			return o
		}
		if (p.maxAttempts > 0 && o.attempts >= p.maxAttempts) || time.Now().Add(wait).After(end) || ctx.Err() != nil {
			o.gaveUp = true
			return o
		}
		select {
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		case <-ctx.Done():
		}
		wait = min(2*wait, time.Second)
	}
}

// workload is a run of operations.
type workload struct {
	ops     []*op
	groups  []string
	workers int
	done    atomic.Int64 // operations finished
	seed    uint64
}

// newWorkload draws n operations over a few account groups. Most amounts
// are small; one withdrawal in twenty asks for more than a group ever
// has, so Upvest refuses it for good.
func newWorkload(n, workers int, seed uint64) *workload {
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	w := &workload{workers: workers, seed: seed}
	for range 6 {
		w.groups = append(w.groups, uuid.NewString())
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	for range n {
		pick := rng.IntN(total)
		var k *kind
		for _, k = range kinds {
			if pick -= k.weight; pick < 0 {
				break
			}
		}
		o := &op{kind: k, key: uuid.NewString(), group: w.groups[rng.IntN(len(w.groups))],
			amount: fmt.Sprintf("%d.%02d", 1+rng.IntN(200), rng.IntN(100)), user: uuid.NewString(), counterpart: uuid.NewString()}
		if k.name == upvestsim.KindWithdrawal && rng.IntN(20) == 0 {
			o.amount = "999999999.00"
		}
		w.ops = append(w.ops, o)
	}
	return w
}

// fund gives every group cash for withdrawals and decreases: a large
// direct debit each, confirmed after two simulator steps. They are
// operations like the others and are checked with them.
func (w *workload) fund(ctx context.Context, c *cluster) []*op {
	var ops []*op
	for _, g := range w.groups {
		ops = append(ops, &op{kind: kindNamed(upvestsim.KindDirectDebit), key: uuid.NewString(), group: g,
			amount: "1000000.00", user: uuid.NewString(), counterpart: uuid.NewString()})
	}
	var wg sync.WaitGroup
	for i, o := range ops {
		wg.Go(func() {
			o.creates = append(o.creates, c.create(ctx, finalPatience, i%2, o, rand.New(rand.NewPCG(uint64(i), 1))))
		})
	}
	wg.Wait()
	return ops
}

// run runs every operation, workers at a time.
func (w *workload) run(ctx context.Context, c *cluster) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range w.workers {
		wg.Go(func() {
			for i := range next {
				w.runOp(ctx, c, i)
				w.done.Add(1)
			}
		})
	}
	for i := range w.ops {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
}

// progress is the share of operations finished.
func (w *workload) progress() float64 { return float64(w.done.Load()) / float64(len(w.ops)) }

// runOp runs operation i: one to three callers create at once, starting
// on different replicas; then, for a share of what was created, one or
// two callers cancel it, at once, after a pause that sometimes lets the
// simulator move it past where it can be cancelled.
func (w *workload) runOp(ctx context.Context, c *cluster, i int) {
	o := w.ops[i]
	rng := rand.New(rand.NewPCG(w.seed, uint64(i)))
	n := []int{1, 1, 1, 1, 2, 2, 2, 3, 3}[rng.IntN(9)]
	o.creates = make([]*outcome, n)
	var wg sync.WaitGroup
	for j := range n {
		p, crng := randomPatience(rng), rand.New(rand.NewPCG(w.seed, uint64(i)<<8|uint64(j)))
		wg.Go(func() { o.creates[j] = c.create(ctx, p, (i+j)%2, o, crng) })
	}
	wg.Wait()
	if o.kind.cancel == nil || rng.Float64() >= o.kind.cancelShare {
		return
	}
	for _, oc := range o.creates {
		if oc.code == codes.OK {
			o.cancelID = oc.id
			break
		}
	}
	if o.cancelID == "" {
		return
	}
	select {
	case <-time.After(time.Duration(rng.IntN(1000)) * time.Millisecond):
	case <-ctx.Done():
		return
	}
	n = 1 + rng.IntN(2)
	o.cancels = make([]*outcome, n)
	for j := range n {
		p := randomPatience(rng)
		wg.Go(func() { o.cancels[j] = c.cancel(ctx, p, (i+j+1)%2, o) })
	}
	wg.Wait()
}

// create is one caller of o's create; a quarter of them send the
// request_id in upper case, which must make no difference.
func (c *cluster) create(ctx context.Context, p patience, first int, o *op, rng *rand.Rand) *outcome {
	requestID := o.key
	if rng.IntN(4) == 0 {
		requestID = strings.ToUpper(requestID)
	}
	return c.call(ctx, p, first, func(ctx context.Context, r replica, md *metadata.MD) (string, error) {
		return o.kind.create(ctx, r, o, requestID, grpc.Header(md))
	})
}

// cancel is one caller of o's cancel.
func (c *cluster) cancel(ctx context.Context, p patience, first int, o *op) *outcome {
	return c.call(ctx, p, first, func(ctx context.Context, r replica, _ *metadata.MD) (string, error) {
		return "", o.kind.cancel(ctx, r, o.cancelID)
	})
}

// settle retries, once everything else has stopped, every create and
// cancel a caller gave up on: with the same request_id (or id) it must get
// the answer the others got, or settle what nobody learned.
func (w *workload) settle(ctx context.Context, c *cluster, ops []*op) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.workers)
	for i, o := range ops {
		if gaveUp(o.creates) {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				f := c.create(ctx, finalPatience, i%2, o, rand.New(rand.NewPCG(uint64(i), 2)))
				f.final = true
				o.creates = append(o.creates, f)
			})
		}
		if gaveUp(o.cancels) {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				f := c.cancel(ctx, finalPatience, i%2, o)
				f.final = true
				o.cancels = append(o.cancels, f)
			})
		}
	}
	wg.Wait()
}

func gaveUp(outs []*outcome) bool {
	for _, o := range outs {
		if o.gaveUp {
			return true
		}
	}
	return false
}
