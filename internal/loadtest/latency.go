package loadtest

import (
	"fmt"
	"slices"
	"time"
)

// Summary describes a set of latencies.
type Summary struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

func (s Summary) String() string {
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v p99.9=%v max=%v", s.Count,
		s.P50.Round(time.Microsecond), s.P90.Round(time.Microsecond), s.P99.Round(time.Microsecond),
		s.P999.Round(time.Microsecond), s.Max.Round(time.Microsecond))
}

// summarize sorts samples (in place) and reads the percentiles off.
func summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	at := func(q float64) time.Duration {
		i := int(q * float64(len(samples)))
		return samples[min(i, len(samples)-1)]
	}
	return Summary{Count: len(samples), P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: samples[len(samples)-1]}
}

// Quantile is one point of a latency distribution: the latency Q of the
// samples are at or below.
type Quantile struct {
	Q       float64       `json:"q"`
	Latency time.Duration `json:"latency_ns"`
}

// PlotQuantiles are the quantiles UnaryResult keeps: dense at the tail,
// where the distributions differ.
var PlotQuantiles = []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1}

// quantiles reads qs off sorted samples.
func quantiles(sorted []time.Duration, qs []float64) []Quantile {
	if len(sorted) == 0 {
		return nil
	}
	out := make([]Quantile, len(qs))
	for i, q := range qs {
		out[i] = Quantile{Q: q, Latency: sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]}
	}
	return out
}
