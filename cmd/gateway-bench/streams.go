package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/upvest-gateway/gateway/internal/loadtest"
	"github.com/upvest-gateway/gateway/internal/pause"
)

// IngestRow is the durable-ingest scenario's result.
type IngestRow struct {
	Events          int           `json:"events"`
	EventsPerSecond float64       `json:"events_per_second"`
	DeliveryP50     time.Duration `json:"delivery_p50_ns"`
	DeliveryP99     time.Duration `json:"delivery_p99_ns"`
	GatewayCores    float64       `json:"gateway_cores"`
	CPUPressure     float64       `json:"cpu_pressure_percent"`
	// The signature check of one delivery of 100 events, which the
	// deliveries (signed with Ed25519) mostly leave out.
	VerifyEd25519 time.Duration `json:"verify_ed25519_ns"`
	VerifyP521    time.Duration `json:"verify_p521_ns"`
}

// FanoutRow is one webhook → subscriber scenario's result.
type FanoutRow struct {
	Name            string           `json:"name"`
	Subscribers     int              `json:"subscribers"`
	PerAccountGroup bool             `json:"per_account_group"`
	EventsPerSecond int              `json:"events_per_second"`
	Latency         loadtest.Summary `json:"latency"` // webhook → subscriber
	Received        int64            `json:"received"`
	Expected        int64            `json:"expected"`
	// Ingest meanwhile: the rate stored, the deliveries' POST latency,
	// and the same without subscribers (IngestBaseline), to tell whether
	// the subscribers slowed ingest.
	IngestPerSecond float64          `json:"ingest_events_per_second"`
	IngestLate      int              `json:"ingest_late"`
	IngestLatency   loadtest.Summary `json:"ingest_latency"`
	IngestBaseline  loadtest.Summary `json:"ingest_latency_without_subscribers"`
	GatewayCores    float64          `json:"gateway_cores"`
	CPUPressure     float64          `json:"cpu_pressure_percent"`
	// CPUShares is where the gateway's CPU went (-profile).
	CPUShares CPUShares `json:"cpu_shares,omitempty"`
}

// IdleRow is the idle-streams scenario's result.
type IdleRow struct {
	Streams   int                 `json:"streams"`
	PerStream float64             `json:"rss_per_stream_bytes"`
	Open      time.Duration       `json:"open_ns"`
	Points    []loadtest.RSSPoint `json:"points"`
	// Parts is the growth per stream of the Go runtime's gauges
	// (gatewayProcess.memory): goroutine stacks, heap in use, goroutines.
	Parts map[string]float64 `json:"per_stream_parts,omitempty"`
}

func gatewayCPU(gw *gatewayProcess) func() time.Duration {
	return func() time.Duration {
		d, _ := gw.cpu()
		return d
	}
}

func runIngest(ctx context.Context, s Settings, gw *gatewayProcess, signer *loadtest.WebhookSigner, log io.Writer) (IngestRow, error) {
	cpu0, _ := gw.cpu()
	res, err := loadtest.Ingest(ctx, loadtest.IngestConfig{URL: gw.webhookURL(), Signer: signer, Deliveries: s.IngestDeliveries,
		EventsPerDelivery: 100, Senders: s.IngestSenders})
	if err != nil {
		return IngestRow{}, err
	}
	cpu1, _ := gw.cpu()
	fmt.Fprintf(log, "ingest: %v\n", res)
	if res.Failed > 0 {
		return IngestRow{}, fmt.Errorf("ingest: %d deliveries failed: %v", res.Failed, res.Errors)
	}
	row := IngestRow{Events: res.Events, EventsPerSecond: res.EventsPerSecond, DeliveryP50: res.Latency.P50,
		DeliveryP99: res.Latency.P99, GatewayCores: (cpu1 - cpu0).Seconds() / res.Elapsed.Seconds(), CPUPressure: res.CPUPressure}
	n := 200
	if s.Quick {
		n = 10
	}
	if row.VerifyEd25519, err = loadtest.VerifyCost(nil, 100, n); err != nil {
		return IngestRow{}, err
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return IngestRow{}, err
	}
	if row.VerifyP521, err = loadtest.VerifyCost(p521, 100, max(n/10, 3)); err != nil {
		return IngestRow{}, err
	}
	return row, nil
}

// runFanout runs a fan-out scenario, after the same deliveries without
// subscribers (the ingest baseline).
func runFanout(ctx context.Context, s Settings, gw *gatewayProcess, signer *loadtest.WebhookSigner, name string,
	subscribers, rate int, perAccountGroup bool, log io.Writer,
) (FanoutRow, error) {
	row := FanoutRow{Name: name, Subscribers: subscribers, PerAccountGroup: perAccountGroup, EventsPerSecond: rate}
	for _, n := range []int{0, subscribers} {
		var profiled chan error
		path := filepath.Join(s.Out, "profiles", fmt.Sprintf("fanout-%s.pb.gz", strings.ReplaceAll(name, " ", "-")))
		if s.Profile && n > 0 {
			// The measured seconds but the last, whole.
			profiled = make(chan error, 1)
			go func() {
				if !pause.For(ctx, s.StreamWarmup) {
					profiled <- ctx.Err()
					return
				}
				profiled <- gw.profile(ctx, max(s.StreamDuration-time.Second, time.Second), path)
			}()
		}
		res, err := loadtest.Fanout(ctx, loadtest.FanoutConfig{GRPCAddr: gw.grpcAddr, WebhookURL: gw.webhookURL(), Signer: signer,
			Subscribers: n, PerAccountGroup: perAccountGroup, Conns: s.StreamConns, EventsPerSecond: rate,
			EventsPerDelivery: s.EventsPerDelivery, Warmup: s.StreamWarmup, Duration: s.StreamDuration, GatewayCPU: gatewayCPU(gw)})
		if err != nil {
			return row, err
		}
		fmt.Fprintf(log, "fanout %s, %d subscribers: %v\n", name, n, res)
		if res.Deliveries.Failed > 0 || res.Streams.Failed > 0 || res.Streams.Received < res.Expected {
			return row, fmt.Errorf("fanout %s: received %d of %d; %d deliveries failed %v; %d streams failed %v", name,
				res.Streams.Received, res.Expected, res.Deliveries.Failed, res.Deliveries.Errors, res.Streams.Failed, res.Streams.Errors)
		}
		if n == 0 {
			row.IngestBaseline = res.Deliveries.Latency
			continue
		}
		row.Latency, row.Received, row.Expected = res.Streams.Latency, res.Streams.Received, res.Expected
		row.IngestPerSecond, row.IngestLate, row.IngestLatency = res.Deliveries.EventsPerSecond, res.Deliveries.Late, res.Deliveries.Latency
		row.GatewayCores, row.CPUPressure = res.GatewayCPU.Seconds()/res.Elapsed.Seconds(), res.CPUPressure
		if profiled != nil {
			if err := <-profiled; err != nil {
				return row, fmt.Errorf("fanout %s: CPU profile: %w", name, err)
			}
			if row.CPUShares, err = profileShares(path); err != nil {
				return row, err
			}
		}
	}
	return row, nil
}

func runIdle(ctx context.Context, s Settings, gw *gatewayProcess, log io.Writer) (IdleRow, error) {
	cfg := loadtest.IdleStreamsConfig{Addr: gw.grpcAddr, Streams: s.IdleStreams, Steps: s.IdleSteps,
		Subscribe: loadtest.InProcess, RSS: gw.rss, Breakdown: gw.memory}
	if s.Quick {
		cfg.Settle = 300 * time.Millisecond
	}
	res, err := loadtest.IdleStreams(ctx, cfg)
	if err != nil {
		return IdleRow{}, err
	}
	fmt.Fprintf(log, "idle streams: %v\n", res)
	return IdleRow{Streams: res.Streams, PerStream: res.PerStream, Open: res.Open, Points: res.Points, Parts: res.PerStreamParts}, nil
}
