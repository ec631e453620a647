package loadtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/uuid"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// subscriberProcessEnv makes the test binary the subscriber process of
// InChildProcess instead of running tests.
const subscriberProcessEnv = "LOADTEST_SUBSCRIBER_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(subscriberProcessEnv) == "1" {
		if err := ServeSubscriberProcess(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "subscriber process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childSubscribers opens streams in a re-run of this test binary.
var childSubscribers = InChildProcess(func() *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), subscriberProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	return cmd
})

// gateway starts a gateway (embedded log, durable by group commit, as the
// gateway runs by default) that accepts deliveries signed by s.
func gateway(tb testing.TB, s *WebhookSigner) (grpcAddr, webhookURL string) {
	tb.Helper()
	g := servertest.Start(tb, servertest.WithWebhookKeys(s.Keys()))
	return g.Server.GRPCAddr(), g.BaseURL + server.WebhookPath
}

func signer(tb testing.TB) *WebhookSigner {
	tb.Helper()
	s, err := NewWebhookSigner(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// The scenarios at a small scale, in and out of process: every stream
// opens, every event reaches every subscriber it should, nothing fails.
// (Speed is for the benchmarks below.)
func TestScenarios(t *testing.T) {
	s := signer(t)
	addr, url := gateway(t, s)
	ctx := context.Background()

	idle, err := IdleStreams(ctx, IdleStreamsConfig{Addr: addr, Streams: 50, Conns: 2, Steps: 2, Subscribe: childSubscribers,
		RSS: SettledRSS, Settle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(idle)
	if len(idle.Points) != 3 || idle.Points[1].Streams != 25 || idle.Points[2].Streams != 50 || idle.Points[2].RSS != idle.RSS {
		t.Errorf("RSS points %+v, want 0, 25 and 50 streams", idle.Points)
	}

	for _, tc := range []struct {
		name            string
		perAccountGroup bool
		subscribe       Subscribe
	}{
		{"per account group, child process", true, childSubscribers},
		{"unfiltered, in process", false, InProcess},
	} {
		res, err := Fanout(ctx, FanoutConfig{GRPCAddr: addr, WebhookURL: url, Signer: s, Subscribers: 20,
			PerAccountGroup: tc.perAccountGroup, EventsPerSecond: 100, EventsPerDelivery: 5,
			Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Subscribe: tc.subscribe})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, res)
		if res.Deliveries.Failed > 0 || res.Streams.Failed > 0 {
			t.Errorf("%s: failures: %v %v", tc.name, res.Deliveries.Errors, res.Streams.Errors)
		}
		if res.Deliveries.Events == 0 || res.Streams.Received != res.Expected {
			t.Errorf("%s: received %d events, want %d", tc.name, res.Streams.Received, res.Expected)
		}
	}

	in, err := Ingest(ctx, IngestConfig{URL: url, Signer: s, Deliveries: 20, EventsPerDelivery: 100, Senders: 4})
	if err != nil || in.Failed > 0 || in.Events != 2000 {
		t.Fatalf("Ingest = %v, %v", in, err)
	}
	if _, err := VerifyCost(nil, 100, 3); err != nil {
		t.Fatal(err)
	}
}

// Unary measures calls, latency and the CPU per call of the process under
// test (here this one).
func TestUnary(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, servertest.WithoutEvents())
	ag := uuid.NewString()
	created, err := g.Topups().CreateTopup(t.Context(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(),
		AccountGroupId: ag, CashAmount: "10.00", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	read := &gatewayv1.GetTopupRequest{TopupId: created.GetTopup().GetId()}
	pid := os.Getpid()
	res, err := Unary(t.Context(), UnaryConfig{
		Call: func(ctx context.Context) error {
			_, err := g.Topups().GetTopup(ctx, read)
			return err
		},
		Concurrency: 2, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		CPU: func() (time.Duration, error) { return ProcessCPUOf(pid) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Calls == 0 || res.Failed != 0 || res.Latency.Count != res.Calls || len(res.Quantiles) != len(PlotQuantiles) {
		t.Fatalf("Unary = %+v", res)
	}
	if res.Quantiles[len(res.Quantiles)-1].Latency != res.Latency.Max {
		t.Errorf("the last quantile %v is not the maximum %v", res.Quantiles[len(res.Quantiles)-1].Latency, res.Latency.Max)
	}

	failing, err := Unary(t.Context(), UnaryConfig{Call: func(context.Context) error { return errors.New("refused") },
		Concurrency: 1, Duration: 50 * time.Millisecond})
	if err != nil || failing.Calls != 0 || failing.Failed == 0 || len(failing.Errors) == 0 {
		t.Fatalf("Unary of a failing call = %+v, %v", failing, err)
	}
}

func TestProcessCPUOf(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := ProcessCPUOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	servertest.WaitUntil(t, func() bool {
		for start := time.Now(); time.Since(start) < 20*time.Millisecond; { // spin: use some CPU
		}
		after, err := ProcessCPUOf(os.Getpid())
		return err == nil && after > before
	})
	if _, err := ProcessCPUOf(-1); err == nil {
		t.Error("ProcessCPUOf(-1) did not fail")
	}
}

// The benchmarks run each scenario once at the scale of the gateway's
// targets (flags scale them), for about a minute each, so they run only
// with LOADTEST=1 set; run them with -benchtime=1x. Their numbers are per
// run, reported as custom metrics.
var (
	idleStreams     = flag.Int("loadtest.idle-streams", 10000, "streams of BenchmarkIdleStreams")
	groupSubs       = flag.Int("loadtest.group-subscribers", 10000, "subscribers of BenchmarkFanoutPerAccountGroup")
	groupRate       = flag.Int("loadtest.group-rate", 1000, "events/s of BenchmarkFanoutPerAccountGroup")
	unfilteredSubs  = flag.Int("loadtest.unfiltered-subscribers", 1000, "subscribers of BenchmarkFanoutUnfiltered")
	unfilteredRate  = flag.Int("loadtest.unfiltered-rate", 100, "events/s of BenchmarkFanoutUnfiltered")
	perDelivery     = flag.Int("loadtest.events-per-delivery", 10, "events per delivery of the fan-out benchmarks")
	heapProfilePath = flag.String("loadtest.heap-profile", "", "BenchmarkIdleStreams writes a heap profile here with the streams open")
	conns           = flag.Int("loadtest.conns", 10, "connections the subscribers of the fan-out benchmarks share")
	fanoutDuration  = flag.Duration("loadtest.duration", 20*time.Second, "measured time of the fan-out benchmarks")
	ingestSenders   = flag.Int("loadtest.ingest-senders", 8, "concurrent deliveries of BenchmarkIngest")
	ingestDelivered = flag.Int("loadtest.ingest-deliveries", 1000, "deliveries of 100 events of BenchmarkIngest")
)

// fullScale skips a benchmark unless LOADTEST=1 asks for the scenarios.
func fullScale(b *testing.B) {
	b.Helper()
	if os.Getenv("LOADTEST") != "1" {
		b.Skip("a load scenario: set LOADTEST=1 to run it (about a minute)")
	}
}

// heapProfile writes a heap profile to -loadtest.heap-profile, if set.
func heapProfile(tb testing.TB) func() {
	return func() {
		if *heapProfilePath == "" {
			return
		}
		f, err := os.Create(*heapProfilePath)
		if err != nil {
			tb.Error(err)
			return
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			tb.Error(err)
		}
	}
}

// BenchmarkIdleStreams: the gateway's RSS per idle stream, the streams
// opened by a child process (each watching an account group of its own,
// 1,000 streams per connection).
func BenchmarkIdleStreams(b *testing.B) {
	fullScale(b)
	s := signer(b)
	addr, _ := gateway(b, s)
	for range b.N {
		res, err := IdleStreams(context.Background(), IdleStreamsConfig{Addr: addr, Streams: *idleStreams,
			Subscribe: childSubscribers, RSS: SettledRSS, Breakdown: RuntimeMemory, WhileOpen: heapProfile(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.Log(res)
		b.ReportMetric(res.PerStream, "B/stream")
		b.ReportMetric(float64(res.Streams), "streams")
		b.ReportMetric(res.Open.Seconds(), "s-to-open")
		for name, v := range res.PerStreamParts {
			if name != "goroutines" {
				b.ReportMetric(v, name+"-B/stream")
			}
		}
	}
}

// benchmarkFanout runs the fan-out scenario, first without subscribers:
// the same deliveries' ingest latency, for the "ingest not slowed"
// comparison.
func benchmarkFanout(b *testing.B, subscribers, rate int, perAccountGroup bool) {
	fullScale(b)
	for _, n := range []int{0, subscribers} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			s := signer(b)
			addr, url := gateway(b, s)
			for range b.N {
				res, err := Fanout(context.Background(), FanoutConfig{GRPCAddr: addr, WebhookURL: url, Signer: s,
					Subscribers: n, PerAccountGroup: perAccountGroup, EventsPerSecond: rate,
					EventsPerDelivery: *perDelivery, Warmup: 3 * time.Second, Duration: *fanoutDuration, Subscribe: childSubscribers,
					Conns: *conns, GatewayCPU: ProcessCPU})
				if err != nil {
					b.Fatal(err)
				}
				b.Log(res)
				if res.Streams.Received < res.Expected || res.Deliveries.Failed > 0 || res.Streams.Failed > 0 {
					b.Errorf("received %d of %d; %d deliveries failed %v; %d streams failed %v", res.Streams.Received, res.Expected,
						res.Deliveries.Failed, res.Deliveries.Errors, res.Streams.Failed, res.Streams.Errors)
				}
				if n > 0 {
					b.ReportMetric(float64(res.Streams.Latency.P50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(res.Streams.Latency.P99.Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(res.Streams.Latency.Max.Microseconds())/1000, "max-ms")
					b.ReportMetric(float64(res.Streams.Received)/(res.Deliveries.Elapsed.Seconds()), "msgs/s")
				}
				b.ReportMetric(res.Deliveries.EventsPerSecond, "ingest-events/s")
				b.ReportMetric(float64(res.Deliveries.Latency.P50.Microseconds())/1000, "ingest-p50-ms")
				b.ReportMetric(float64(res.Deliveries.Latency.P99.Microseconds())/1000, "ingest-p99-ms")
				b.ReportMetric(res.GatewayCPU.Seconds()/res.Elapsed.Seconds(), "gateway-cores")
				b.ReportMetric(res.CPUPressure, "cpu-pressure-%")
			}
		})
	}
}

// BenchmarkFanoutPerAccountGroup: webhook → subscriber latency, 10,000
// subscribers each watching its own account group, 1,000 events/s spread
// over them.
func BenchmarkFanoutPerAccountGroup(b *testing.B) {
	benchmarkFanout(b, *groupSubs, *groupRate, true)
}

// BenchmarkFanoutUnfiltered: the same for 1,000 subscribers of every event
// at 100 events/s (100,000 messages/s).
func BenchmarkFanoutUnfiltered(b *testing.B) {
	benchmarkFanout(b, *unfilteredSubs, *unfilteredRate, false)
}

// BenchmarkIngest: durable webhook ingest in deliveries of 100 events from
// concurrent senders, signed with Ed25519 (a check of about 60 µs per
// delivery); verify-P-521 is what Upvest's own key costs per delivery.
func BenchmarkIngest(b *testing.B) {
	fullScale(b)
	s := signer(b)
	_, url := gateway(b, s)
	for range b.N {
		res, err := Ingest(context.Background(), IngestConfig{URL: url, Signer: s, Deliveries: *ingestDelivered,
			EventsPerDelivery: 100, Senders: *ingestSenders})
		if err != nil || res.Failed > 0 {
			b.Fatalf("%v %v", res, err)
		}
		b.Log(res)
		b.ReportMetric(res.EventsPerSecond, "events/s")
		b.ReportMetric(float64(res.Latency.P99.Microseconds())/1000, "delivery-p99-ms")
		b.ReportMetric(res.CPUPressure, "cpu-pressure-%")
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for name, key := range map[string]*ecdsa.PrivateKey{"P-521": p521} {
		d, err := VerifyCost(key, 100, 50)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(d.Microseconds()), "verify-"+name+"-µs/delivery")
	}
	if d, err := VerifyCost(nil, 100, 200); err == nil {
		b.ReportMetric(float64(d.Microseconds()), "verify-Ed25519-µs/delivery")
	}
}
