// Command gateway-bench measures the gateway on this machine, the way a
// client sees it: it builds and starts the gateway binary (embedded event
// log, settings as shipped) against the Upvest simulator served on
// loopback from this process, and measures side by side in one run:
//
//   - unary calls (a read, GetTopup, and a create, CreateTopup) from a
//     direct signed client (the upstream client alone calling the
//     simulator: the limit), over gRPC and over REST, at each concurrency,
//     for P-521, P-256 and Ed25519 tenant keys: throughput, latency
//     quantiles and the gateway's CPU per call; the signing bound (cores ÷
//     one signature's time) beside them;
//   - durable webhook ingest (deliveries of 100 events);
//   - webhook → subscriber latency for subscribers each filtered to an
//     account group of its own, and for unfiltered subscribers;
//   - the gateway's resident memory per idle Watch stream, in steps;
//   - cold start: process start to ready, for every gateway started.
//
// The simulator checks one signature in -sim-verify-one-in, so that its
// checks (a P-521 one costs more than the gateway's whole call) do not
// take the CPU the gateway is measured with.
//
//	go run ./cmd/gateway-bench                    # everything, about 12 minutes
//	go run ./cmd/gateway-bench -quick             # a smoke run, under a minute
//	go run ./cmd/gateway-bench -scenarios unary -keys Ed25519 -concurrency 1,8
//
// It writes results.json, results.md and the plots (SVG) to -out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(floorServerEnv) == "1" {
		os.Exit(serveFloor())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Settings are the run's flags, kept in the results.
type Settings struct {
	Out       string   `json:"-"`
	Gateway   string   `json:"gateway_binary,omitempty"` // prebuilt; "": built from ./cmd/gateway
	Quick     bool     `json:"quick"`
	Scenarios []string `json:"scenarios"`

	// Unary calls.
	Keys        []string      `json:"keys"`
	Faces       []string      `json:"faces"`
	Calls       []string      `json:"calls"`
	Concurrency []int         `json:"concurrency"`
	Warmup      time.Duration `json:"warmup_ns"`
	Duration    time.Duration `json:"duration_ns"`
	// ProfileConcurrency is the concurrency at which -profile takes the
	// gateway's CPU profiles, and the targets read CPU per call.
	ProfileConcurrency int  `json:"profile_concurrency"`
	Profile            bool `json:"profile"`
	SimVerifyOneIn     int  `json:"sim_verify_one_in"`
	// UpstreamTLS serves the simulator over TLS with HTTP/2, as Upvest is
	// reached; else plain HTTP/1.1.
	UpstreamTLS bool `json:"upstream_tls"`
	// LoadGCPercent is this process's GOGC: the simulator, the load
	// generators and the subscribers share the machine with the gateway.
	LoadGCPercent int `json:"load_gc_percent"`
	// CPUProfile, when set, is where this process's own CPU profile goes:
	// what the load generators and subscribers cost, beside the gateway.
	CPUProfile string `json:"-"`

	// Event streams.
	IdleStreams           int           `json:"idle_streams"`
	IdleSteps             int           `json:"idle_steps"`
	GroupSubscribers      int           `json:"group_subscribers"`
	GroupRate             int           `json:"group_events_per_second"`
	UnfilteredSubscribers int           `json:"unfiltered_subscribers"`
	UnfilteredRate        int           `json:"unfiltered_events_per_second"`
	EventsPerDelivery     int           `json:"events_per_delivery"`
	StreamConns           int           `json:"stream_connections"`
	StreamWarmup          time.Duration `json:"stream_warmup_ns"`
	StreamDuration        time.Duration `json:"stream_duration_ns"`
	IngestDeliveries      int           `json:"ingest_deliveries"`
	IngestSenders         int           `json:"ingest_senders"`
}

// Scenario names (-scenarios).
const (
	scenarioUnary  = "unary"
	scenarioIngest = "ingest"
	scenarioFanout = "fanout"
	scenarioIdle   = "idle"
)

var allScenarios = []string{scenarioUnary, scenarioIngest, scenarioFanout, scenarioIdle}

// Faces and calls of the unary scenario.
const (
	faceDirect = "direct"
	faceGRPC   = "grpc"
	faceREST   = "rest"
	callRead   = "read"
	callCreate = "create"
)

// quick is the smoke run's scale: every scenario, small and short.
func (s *Settings) quick() {
	s.Concurrency = []int{1, 8}
	s.Warmup, s.Duration = 100*time.Millisecond, 400*time.Millisecond
	s.ProfileConcurrency = 8
	s.IdleStreams, s.IdleSteps = 200, 2
	s.GroupSubscribers, s.GroupRate = 200, 200
	s.UnfilteredSubscribers, s.UnfilteredRate = 50, 50
	s.StreamConns = 2
	s.StreamWarmup, s.StreamDuration = 200*time.Millisecond, time.Second
	s.IngestDeliveries, s.IngestSenders = 40, 4
}

func parseSettings(args []string, stderr io.Writer) (Settings, error) {
	s := Settings{}
	fs := flag.NewFlagSet("gateway-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var scenarios, keys, faces, calls, concurrency string
	fs.StringVar(&s.Out, "out", "gateway-bench-results", "directory for results.json, results.md, the plots and profiles")
	fs.StringVar(&s.Gateway, "gateway", "", "gateway binary to run (default: go build ./cmd/gateway)")
	fs.BoolVar(&s.Quick, "quick", false, "a smoke run: every scenario at a small scale, under a minute (other flags given win)")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.StringVar(&keys, "keys", strings.Join(keyNames, ","), "tenant signing keys of the unary scenario")
	fs.StringVar(&faces, "faces", strings.Join([]string{faceDirect, faceGRPC, faceREST}, ","), "who calls: direct (the upstream client alone), grpc, rest")
	fs.StringVar(&calls, "calls", callRead+","+callCreate, "unary calls: read (GetTopup), create (CreateTopup)")
	fs.StringVar(&concurrency, "concurrency", "1,8,32,128", "concurrent callers of the unary scenario")
	fs.DurationVar(&s.Warmup, "warmup", time.Second, "unary: calls before each measurement")
	fs.DurationVar(&s.Duration, "duration", 4*time.Second, "unary: measured time per face, call, key and concurrency")
	fs.IntVar(&s.ProfileConcurrency, "profile-concurrency", 32, "concurrency the targets read CPU per call at, and -profile profiles at")
	fs.BoolVar(&s.Profile, "profile", true, "take the gateway's CPU profile of each unary measurement at -profile-concurrency (saved to -out/profiles): where its CPU goes, and the signing share the P-521 targets read")
	fs.IntVar(&s.SimVerifyOneIn, "sim-verify-one-in", 100, "the simulator checks the signature of one request in this many")
	fs.BoolVar(&s.UpstreamTLS, "upstream-tls", false, "serve the simulator (and the bare proxies' upstream) over TLS with HTTP/2, as the gateway reaches Upvest; default: plain HTTP/1.1 on loopback")
	fs.IntVar(&s.LoadGCPercent, "load-gc-percent", 400, "GOGC of this process (the simulator, the load generators, the subscribers), whose small heap a default collector would collect often, with CPU the gateway is measured with; 0: Go's default. The gateway keeps its own (GOGC passes through to it)")
	fs.StringVar(&s.CPUProfile, "cpuprofile", "", "write this process's CPU profile (the simulator, the load generators, the subscribers) to this file")
	fs.IntVar(&s.IdleStreams, "idle-streams", 10000, "idle Watch streams for RSS per stream")
	fs.IntVar(&s.IdleSteps, "idle-steps", 5, "steps the idle streams are opened in (RSS read after each)")
	fs.IntVar(&s.GroupSubscribers, "group-subscribers", 10000, "subscribers each watching an account group of its own")
	fs.IntVar(&s.GroupRate, "group-rate", 1000, "events/s spread over those account groups")
	fs.IntVar(&s.UnfilteredSubscribers, "unfiltered-subscribers", 1000, "subscribers of every event")
	fs.IntVar(&s.UnfilteredRate, "unfiltered-rate", 100, "events/s to the unfiltered subscribers")
	fs.IntVar(&s.EventsPerDelivery, "events-per-delivery", 10, "events per webhook delivery of the fan-out scenarios")
	fs.IntVar(&s.StreamConns, "stream-conns", 10, "connections the subscribers share")
	fs.DurationVar(&s.StreamWarmup, "stream-warmup", 3*time.Second, "fan-out: deliveries before the measurement")
	fs.DurationVar(&s.StreamDuration, "stream-duration", 20*time.Second, "fan-out: measured time")
	fs.IntVar(&s.IngestDeliveries, "ingest-deliveries", 1000, "ingest: deliveries of 100 events")
	fs.IntVar(&s.IngestSenders, "ingest-senders", 8, "ingest: deliveries at once")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if s.Quick {
		s.quick()
		if err := fs.Parse(args); err != nil { // what was given wins
			return s, err
		}
	}
	var err error
	if s.Scenarios, err = names(scenarios, allScenarios, "-scenarios"); err != nil {
		return s, err
	}
	if s.Keys, err = names(keys, keyNames, "-keys"); err != nil {
		return s, err
	}
	if s.Faces, err = names(faces, []string{faceDirect, faceGRPC, faceREST}, "-faces"); err != nil {
		return s, err
	}
	if s.Calls, err = names(calls, []string{callRead, callCreate}, "-calls"); err != nil {
		return s, err
	}
	if !s.Quick || given["concurrency"] {
		s.Concurrency = nil
		for _, c := range strings.Split(concurrency, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 1 {
				return s, fmt.Errorf("-concurrency: %q is not a positive number", c)
			}
			s.Concurrency = append(s.Concurrency, n)
		}
	}
	switch {
	case s.Duration <= 0 || s.StreamDuration <= 0:
		return s, errors.New("-duration and -stream-duration must be positive")
	case s.SimVerifyOneIn < 1:
		return s, errors.New("-sim-verify-one-in must be at least 1")
	case s.IdleStreams < 1 || s.IdleSteps < 1 || s.GroupSubscribers < 1 || s.UnfilteredSubscribers < 1 || s.GroupRate < 1 ||
		s.UnfilteredRate < 1 || s.EventsPerDelivery < 1 || s.StreamConns < 1 || s.IngestDeliveries < 1 || s.IngestSenders < 1:
		return s, errors.New("stream and ingest counts and rates must be positive")
	}
	return s, nil
}

// names splits a comma-separated list, each one of known.
func names(list string, known []string, flagName string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("%s: %q is not one of %s", flagName, n, strings.Join(known, ", "))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: none given", flagName)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	s, err := parseSettings(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "gateway-bench:", err)
		return 2
	}
	if s.LoadGCPercent != 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(s.LoadGCPercent))
	}
	if s.CPUProfile != "" {
		stop, err := startCPUProfile(s.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "gateway-bench:", err)
			return 1
		}
		defer stop()
	}
	if err := bench(ctx, s, stdout); err != nil {
		fmt.Fprintln(stderr, "gateway-bench:", err)
		return 1
	}
	return 0
}
