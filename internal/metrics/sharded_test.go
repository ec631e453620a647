package metrics

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The sharded histogram, observed from many goroutines, is collected as the
// histogram Prometheus's own would be for the same observations: the same
// count, sum and cumulative buckets, under the same name and help.
func TestShardedHistogramMatchesPrometheus(t *testing.T) {
	t.Parallel()
	opts := prometheus.HistogramOpts{Namespace: "test", Name: "lag_seconds", Help: "A lag.", Buckets: latencyBuckets}
	sharded := newShardedHistogram(opts)
	plain := prometheus.NewHistogram(opts)

	var values [][]float64
	for g := range 40 {
		r := rand.New(rand.NewPCG(uint64(g), 1))
		var vs []float64
		for range 500 {
			// Spread over every bucket, +Inf included, and the bounds exactly.
			v := r.Float64() * 40
			if r.IntN(10) == 0 {
				v = latencyBuckets[r.IntN(len(latencyBuckets))]
			}
			vs = append(vs, v)
		}
		values = append(values, vs)
	}
	var wg sync.WaitGroup
	for _, vs := range values {
		observe := sharded.observer()
		wg.Go(func() {
			for _, v := range vs {
				observe(v)
			}
		})
		for _, v := range vs {
			plain.Observe(v)
		}
	}
	wg.Wait()

	got, want := gather(t, sharded), gather(t, plain)
	if got.GetName() != want.GetName() || got.GetHelp() != want.GetHelp() || got.GetType() != want.GetType() {
		t.Fatalf("family %s %q %v, want %s %q %v", got.GetName(), got.GetHelp(), got.GetType(), want.GetName(), want.GetHelp(), want.GetType())
	}
	gh, wh := got.GetMetric()[0].GetHistogram(), want.GetMetric()[0].GetHistogram()
	if gh.GetSampleCount() != wh.GetSampleCount() || gh.GetSampleCount() != 40*500 {
		t.Fatalf("count %d, want %d", gh.GetSampleCount(), wh.GetSampleCount())
	}
	if d := gh.GetSampleSum() - wh.GetSampleSum(); d > 1e-6 || d < -1e-6 {
		t.Fatalf("sum %v, want %v", gh.GetSampleSum(), wh.GetSampleSum())
	}
	if len(gh.GetBucket()) != len(wh.GetBucket()) {
		t.Fatalf("%d buckets, want %d", len(gh.GetBucket()), len(wh.GetBucket()))
	}
	for i, b := range gh.GetBucket() {
		w := wh.GetBucket()[i]
		if b.GetUpperBound() != w.GetUpperBound() || b.GetCumulativeCount() != w.GetCumulativeCount() {
			t.Errorf("bucket le=%v: %d, want le=%v: %d", b.GetUpperBound(), b.GetCumulativeCount(), w.GetUpperBound(), w.GetCumulativeCount())
		}
	}
}

func gather(t *testing.T, c prometheus.Collector) *dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v", mfs)
	}
	return mfs[0]
}

// BenchmarkStreamLag: observing from both CPUs at once, the sharded
// histogram against Prometheus's own.
func BenchmarkStreamLag(b *testing.B) {
	opts := prometheus.HistogramOpts{Name: "lag_seconds", Help: "A lag.", Buckets: latencyBuckets}
	b.Run("sharded", func(b *testing.B) {
		h := newShardedHistogram(opts)
		b.RunParallel(func(pb *testing.PB) {
			observe := h.observer()
			for pb.Next() {
				observe(0.02)
			}
		})
	})
	b.Run("prometheus", func(b *testing.B) {
		h := prometheus.NewHistogram(opts)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Observe(0.02)
			}
		})
	})
}
