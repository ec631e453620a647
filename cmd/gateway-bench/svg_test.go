package main

import (
	"math"
	"slices"
	"testing"
)

func TestNiceStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want float64 }{
		{0, 1}, {0.13, 0.2}, {1, 1}, {1.1, 2}, {3, 5}, {7, 10}, {1800, 2000}, {45000, 50000},
	} {
		if got := niceStep(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestAxisTicks(t *testing.T) {
	t.Parallel()
	labels := func(ts []tick) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.label)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		kind     scaleKind
		values   []float64
		fromZero bool
		want     []string
	}{
		{"linear from zero", linear, []float64{1200, 9300}, true, []string{"0", "2k", "4k", "6k", "8k", "10k"}},
		{"logarithmic", logarithmic, []float64{0.12, 4.2}, false, []string{"0.1", "0.2", "0.5", "1", "2", "5"}},
		{"nines", nines, []float64{0.5, 0.9, 0.99, 0.999, 1}, false, []string{"p50", "p90", "p99", "p99.9", "max"}},
	} {
		a := newAxis(tc.kind, tc.values, tc.fromZero)
		if got := labels(a.ticks(formatNumber)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ticks %q, want %q", tc.name, got, tc.want)
		}
		for _, v := range tc.values {
			if p := a.pos(v); p < -1e-9 || p > 1+1e-9 {
				t.Errorf("%s: %v placed at %v, outside the axis", tc.name, v, p)
			}
		}
	}
}
