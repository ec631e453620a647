package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upvest-gateway/gateway/internal/pause"
)

// UnaryConfig is a closed loop of unary calls: Concurrency callers, each
// making its next call as soon as its last one is answered.
type UnaryConfig struct {
	// Call makes one call; an error counts it as failed.
	Call        func(ctx context.Context) error
	Concurrency int
	// Warmup is spent calling before the measurement starts (connections
	// open, caches fill); Duration is measured.
	Warmup, Duration time.Duration
	// CPU, when set, reads the CPU time the process under test has used
	// (ProcessCPUOf(pid) for another process), for its CPU per call.
	CPU func() (time.Duration, error)
}

// UnaryResult is how the calls went while measured.
type UnaryResult struct {
	Concurrency int
	Calls       int // answered without error while measured
	Failed      int
	Errors      []string
	Elapsed     time.Duration
	PerSecond   float64
	Latency     Summary
	// Quantiles of the latency, for a distribution plot.
	Quantiles []Quantile
	// CPUPerCall is the process's CPU time over the measurement divided
	// by the calls (with UnaryConfig.CPU).
	CPUPerCall time.Duration
	// CPUPressure is the share of the time (%) during which some task on
	// the machine waited for a CPU (-1: unknown).
	CPUPressure float64
}

func (r UnaryResult) String() string {
	cpu := ""
	if r.CPUPerCall > 0 {
		cpu = fmt.Sprintf(", %v CPU per call", r.CPUPerCall.Round(time.Microsecond))
	}
	return fmt.Sprintf("concurrency %d: %.0f calls/s, %v%s, %d failed; CPU pressure %.0f%%", r.Concurrency, r.PerSecond,
		r.Latency, cpu, r.Failed, r.CPUPressure)
}

// Unary runs the closed loop of cfg and measures it. A call counts when it
// ends within the measured time.
func Unary(ctx context.Context, cfg UnaryConfig) (UnaryResult, error) {
	if cfg.Call == nil || cfg.Concurrency <= 0 || cfg.Duration <= 0 {
		return UnaryResult{}, errors.New("loadtest: Unary needs Call, Concurrency and Duration")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		measuring atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		samples   []time.Duration
		failed    int
		errs      []string
	)
	for range cfg.Concurrency {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				samples = append(samples, mine...)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				start := time.Now()
				err := cfg.Call(ctx)
				d := time.Since(start)
				if !measuring.Load() {
					continue
				}
				if err == nil {
					mine = append(mine, d)
					continue
				}
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				failed++
				if len(errs) < 5 {
					errs = append(errs, err.Error())
				}
				mu.Unlock()
			}
		})
	}
	stop := func(err error) (UnaryResult, error) {
		measuring.Store(false)
		cancel()
		wg.Wait()
		return UnaryResult{}, err
	}
	if !pause.For(ctx, cfg.Warmup) {
		return stop(ctx.Err())
	}
	var cpu0 time.Duration
	if cfg.CPU != nil {
		var err error
		if cpu0, err = cfg.CPU(); err != nil {
			return stop(err)
		}
	}
	pressure := startPressure()
	start := time.Now()
	measuring.Store(true)
	ok := pause.For(ctx, cfg.Duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	res := UnaryResult{Concurrency: cfg.Concurrency, Elapsed: elapsed, CPUPressure: pressure.percent()}
	var cpu1 time.Duration
	if cfg.CPU != nil {
		var err error
		if cpu1, err = cfg.CPU(); err != nil {
			return stop(err)
		}
	}
	cancel()
	wg.Wait()
	if !ok {
		return UnaryResult{}, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	res.Calls, res.Failed, res.Errors = len(samples), failed, errs
	res.PerSecond = float64(len(samples)) / elapsed.Seconds()
	res.Latency = summarize(samples)
	res.Quantiles = quantiles(samples, PlotQuantiles)
	if cfg.CPU != nil && len(samples) > 0 {
		res.CPUPerCall = (cpu1 - cpu0) / time.Duration(len(samples))
	}
	return res, nil
}
