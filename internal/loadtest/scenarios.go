package loadtest

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upvest-gateway/gateway/internal/pause"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
)

// IdleStreamsConfig is the idle-streams scenario.
type IdleStreamsConfig struct {
	Addr    string // the gateway's gRPC address
	Streams int
	Conns   int // connections they share (default: one per 1,000)
	// Steps opens the streams in this many equal steps, reading RSS once
	// each step's streams have settled (default 1): RSS against streams.
	// Each step's streams share Conns connections of their own.
	Steps int
	// Unfiltered streams watch every top-up; by default each watches an
	// account group of its own, as a per-account-group service would.
	Unfiltered bool
	// Subscribe opens the streams: in another process (InChildProcess)
	// when the gateway runs in this one, so that RSS is the gateway's.
	Subscribe Subscribe
	// RSS reads the gateway's resident memory: SettledRSS for a gateway in
	// this process, ProcessRSS(pid) for another.
	RSS func() (uint64, error)
	// Settle is how long the streams stay open, idle, before RSS is read
	// (default 3 s: heartbeats and the gateway's garbage collection run
	// meanwhile).
	Settle time.Duration
	// Breakdown, when set, reads named parts of the gateway's memory
	// (RuntimeMemory for a gateway in this process), before and with the
	// streams open; the result has the difference per stream.
	Breakdown func() map[string]uint64
	// WhileOpen, when set, runs with the streams open, after RSS is read:
	// for a heap profile, say.
	WhileOpen func()
}

// IdleStreamsResult is the gateway's memory with the streams open.
type IdleStreamsResult struct {
	Streams     int
	BaselineRSS uint64 // before
	RSS         uint64 // with the streams open
	PerStream   float64
	Open        time.Duration // to open them all
	// PerStreamParts is Breakdown's growth per stream, by part.
	PerStreamParts map[string]float64
	// Points are the RSS after each step, from the baseline (0 streams).
	Points []RSSPoint
}

// RSSPoint is the gateway's resident memory with Streams streams open.
type RSSPoint struct {
	Streams int    `json:"streams"`
	RSS     uint64 `json:"rss_bytes"`
}

func (r IdleStreamsResult) String() string {
	parts := ""
	for _, name := range slices.Sorted(maps.Keys(r.PerStreamParts)) {
		parts += fmt.Sprintf(", %s %.0f B", name, r.PerStreamParts[name])
	}
	return fmt.Sprintf("%d streams opened in %v: RSS %.1f MiB → %.1f MiB, %.0f B per stream%s", r.Streams,
		r.Open.Round(time.Millisecond), float64(r.BaselineRSS)/(1<<20), float64(r.RSS)/(1<<20), r.PerStream, parts)
}

// IdleStreams measures the gateway's resident memory per idle Watch stream.
func IdleStreams(ctx context.Context, cfg IdleStreamsConfig) (IdleStreamsResult, error) {
	if cfg.Subscribe == nil || cfg.RSS == nil || cfg.Streams <= 0 {
		return IdleStreamsResult{}, errors.New("loadtest: IdleStreams needs Streams, Subscribe and RSS")
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	steps := min(max(cfg.Steps, 1), cfg.Streams)
	base, err := cfg.RSS()
	if err != nil {
		return IdleStreamsResult{}, err
	}
	var baseParts map[string]uint64
	if cfg.Breakdown != nil {
		baseParts = cfg.Breakdown()
	}
	var groups []string
	if !cfg.Unfiltered {
		groups = groupIDs(cfg.Streams)
	}
	var all []Subscribers
	stopAll := func() (failed int, errs []string, err error) {
		for _, subs := range all {
			res, serr := subs.Stop()
			err = cmp.Or(err, serr)
			failed += res.Failed
			errs = append(errs, res.Errors...)
		}
		all = nil
		return failed, errs, err
	}
	defer stopAll()
	points := []RSSPoint{{Streams: 0, RSS: base}}
	var open time.Duration
	var rss uint64
	for opened, step := 0, 1; step <= steps; step++ {
		n := cfg.Streams*step/steps - opened
		sc := StreamsConfig{Addr: cfg.Addr, Streams: n, Conns: cfg.Conns}
		if groups != nil {
			sc.AccountGroups = groups[opened : opened+n]
		}
		start := time.Now()
		subs, err := cfg.Subscribe(ctx, sc)
		if err != nil {
			return IdleStreamsResult{}, err
		}
		open += time.Since(start)
		all = append(all, subs)
		opened += n
		if !pause.For(ctx, cfg.Settle) {
			return IdleStreamsResult{}, ctx.Err()
		}
		if rss, err = cfg.RSS(); err != nil {
			return IdleStreamsResult{}, err
		}
		points = append(points, RSSPoint{Streams: opened, RSS: rss})
	}
	var parts map[string]float64
	if cfg.Breakdown != nil {
		parts = map[string]float64{}
		for name, v := range cfg.Breakdown() {
			parts[name] = (float64(v) - float64(baseParts[name])) / float64(cfg.Streams)
		}
	}
	if cfg.WhileOpen != nil {
		cfg.WhileOpen()
	}
	failed, errs, err := stopAll()
	if err != nil {
		return IdleStreamsResult{}, err
	}
	if failed > 0 {
		return IdleStreamsResult{}, fmt.Errorf("loadtest: %d of %d streams failed: %v", failed, cfg.Streams, errs)
	}
	return IdleStreamsResult{
		Streams:        cfg.Streams,
		BaselineRSS:    base,
		RSS:            rss,
		PerStream:      (float64(rss) - float64(base)) / float64(cfg.Streams),
		Open:           open,
		PerStreamParts: parts,
		Points:         points,
	}, nil
}

// FanoutConfig is the webhook → subscriber scenario.
type FanoutConfig struct {
	GRPCAddr   string
	WebhookURL string
	Signer     *WebhookSigner
	// Subscribers, each watching an account group of its own
	// (PerAccountGroup: the events are spread over those groups, so each
	// goes to one subscriber), or all of them every top-up.
	Subscribers     int
	PerAccountGroup bool
	Conns           int // connections the subscribers share
	// The deliveries.
	EventsPerSecond   int
	EventsPerDelivery int           // default 10
	Warmup            time.Duration // sent, not measured
	Duration          time.Duration // measured
	Subscribe         Subscribe     // default InProcess
	// Drain bounds the wait for the last events after the last delivery
	// (default 30 s).
	Drain time.Duration
	// GatewayCPU reads the CPU time the gateway has used (ProcessCPU for a
	// gateway in this process); nil: not reported.
	GatewayCPU func() time.Duration
}

// FanoutResult is what the subscribers got and how ingest went meanwhile.
type FanoutResult struct {
	Deliveries DeliveriesResult
	Streams    StreamsResult
	// Expected is how many events the subscribers should have received
	// in all: each event once, or once per subscriber when unfiltered.
	Expected int64
	// GatewayCPU is the CPU time the gateway used while the deliveries were
	// sent and received (with GatewayCPU set), Elapsed that time.
	GatewayCPU time.Duration
	Elapsed    time.Duration
	// CPUPressure is the share of that time (%) during which some task on
	// the machine waited for a CPU (-1: unknown): how much the measurement
	// competed with other work.
	CPUPressure float64
}

func (r FanoutResult) String() string {
	return fmt.Sprintf("webhook→subscriber %v; received %d of %d; ingest %.0f events/s (POST %v, %d late, %d failed); "+
		"CPU: gateway %.2f cores, subscribers %.2f cores; CPU pressure %.0f%%", r.Streams.Latency, r.Streams.Received, r.Expected,
		r.Deliveries.EventsPerSecond, r.Deliveries.Latency, r.Deliveries.Late, r.Deliveries.Failed,
		r.GatewayCPU.Seconds()/r.Elapsed.Seconds(), r.Streams.CPU.Seconds()/r.Elapsed.Seconds(), r.CPUPressure)
}

// Fanout opens the subscribers, sends deliveries at the configured rate
// and measures, per event and subscriber, the time from sending the
// delivery to receiving the event.
func Fanout(ctx context.Context, cfg FanoutConfig) (FanoutResult, error) {
	if cfg.Subscribe == nil {
		cfg.Subscribe = InProcess
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 30 * time.Second
	}
	groups := groupIDs(100) // unfiltered: events of a few groups
	sc := StreamsConfig{Addr: cfg.GRPCAddr, Streams: cfg.Subscribers, Conns: cfg.Conns}
	if cfg.PerAccountGroup {
		groups = groupIDs(cfg.Subscribers)
		sc.AccountGroups = groups
	}
	subs, err := cfg.Subscribe(ctx, sc)
	if err != nil {
		return FanoutResult{}, err
	}
	defer subs.Stop()
	if err := subs.Measure(time.Now().Add(cfg.Warmup)); err != nil {
		return FanoutResult{}, err
	}
	start, cpu, pressure := time.Now(), time.Duration(0), startPressure()
	if cfg.GatewayCPU != nil {
		cpu = cfg.GatewayCPU()
	}
	dr, err := Deliver(ctx, DeliveriesConfig{
		URL:               cfg.WebhookURL,
		Signer:            cfg.Signer,
		EventsPerSecond:   cfg.EventsPerSecond,
		EventsPerDelivery: cfg.EventsPerDelivery,
		Duration:          cfg.Warmup + cfg.Duration,
		AccountGroups:     groups,
	})
	if err != nil {
		return FanoutResult{}, err
	}
	want := int64(dr.Events)
	if !cfg.PerAccountGroup || cfg.Subscribers == 0 {
		want *= int64(cfg.Subscribers)
	}
	deadline := time.Now().Add(cfg.Drain)
	for {
		n, err := subs.Received()
		if err != nil {
			return FanoutResult{}, err
		}
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := FanoutResult{Deliveries: dr, Expected: want, Elapsed: time.Since(start), CPUPressure: pressure.percent()}
	if cfg.GatewayCPU != nil {
		res.GatewayCPU = cfg.GatewayCPU() - cpu
	}
	if res.Streams, err = subs.Stop(); err != nil {
		return FanoutResult{}, err
	}
	return res, nil
}

// IngestConfig is the durable-ingest scenario.
type IngestConfig struct {
	URL               string // the gateway's webhook receiver
	Signer            *WebhookSigner
	Deliveries        int // default 500
	EventsPerDelivery int // default 100
	Senders           int // concurrent deliveries (default 8)
}

// IngestResult is how fast the gateway stored deliveries.
type IngestResult struct {
	Events          int
	Elapsed         time.Duration
	EventsPerSecond float64
	Latency         Summary // per delivery
	Failed          int
	Errors          []string
	CPUPressure     float64 // see FanoutResult
}

func (r IngestResult) String() string {
	return fmt.Sprintf("%d events in %v: %.0f events/s; per delivery %v; %d failed; CPU pressure %.0f%%", r.Events,
		r.Elapsed.Round(time.Millisecond), r.EventsPerSecond, r.Latency, r.Failed, r.CPUPressure)
}

// Ingest sends deliveries as fast as the gateway answers them, from
// several senders at once (a closed loop), and measures events stored per
// second. The bodies are built before the clock starts.
func Ingest(ctx context.Context, cfg IngestConfig) (IngestResult, error) {
	if cfg.Signer == nil {
		return IngestResult{}, errors.New("loadtest: Ingest needs a Signer")
	}
	if cfg.Deliveries <= 0 {
		cfg.Deliveries = 500
	}
	if cfg.EventsPerDelivery <= 0 {
		cfg.EventsPerDelivery = 100
	}
	if cfg.Senders <= 0 {
		cfg.Senders = 8
	}
	groups := groupIDs(1000)
	bodies := make([][]byte, cfg.Deliveries)
	for i := range bodies {
		bodies[i] = deliveryBody(cfg.EventsPerDelivery, func(j int) string { return groups[(i*cfg.EventsPerDelivery+j)%len(groups)] })
	}
	s := newSender(cfg.URL, cfg.Signer, cfg.Senders)
	defer s.close()
	var next atomic.Int64
	var wg sync.WaitGroup
	start, pressure := time.Now(), startPressure()
	for range cfg.Senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				s.post(ctx, bodies[i], cfg.EventsPerDelivery)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	return IngestResult{
		Events:          s.events,
		Elapsed:         elapsed,
		EventsPerSecond: float64(s.events) / elapsed.Seconds(),
		Latency:         summarize(s.latency),
		Failed:          s.failed,
		Errors:          s.errs,
		CPUPressure:     pressure.percent(),
	}, ctx.Err()
}

// VerifyCost is the time one signature check of a delivery of
// eventsPerDelivery events takes with key (e.g. Upvest's P-521), averaged
// over n checks: the part of ingest the Ingest scenario leaves out.
func VerifyCost(key crypto.Signer, eventsPerDelivery, n int) (time.Duration, error) {
	s, err := NewWebhookSigner(key)
	if err != nil {
		return 0, err
	}
	body := deliveryBody(eventsPerDelivery, func(int) string { return "2a761567-251b-450e-8615-025d61dcc95e" })
	req, err := s.newDelivery(context.Background(), "http://gateway.invalid/webhooks/upvest", body)
	if err != nil {
		return 0, err
	}
	keys := httpsig.StaticKeys(s.Keys())
	opts := httpsig.VerifyOptions{Required: []string{"@method"}}
	start := time.Now()
	for range n {
		if _, err := httpsig.Verify(context.Background(), req, body, keys, opts); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(n), nil
}
