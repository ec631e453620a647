package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/upvest-gateway/gateway/internal/loadtest"
)

var faceColors = map[string]string{faceDirect: "#666666", faceGRPC: "#1f77b4", faceREST: "#e6550d"}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// plots draws the results: SVG files by name.
func plots(r *Results) map[string][]byte {
	out := map[string][]byte{}
	s := r.Settings
	if len(r.Unary) > 0 {
		var concTicks []tick
		for _, c := range s.Concurrency {
			concTicks = append(concTicks, tick{float64(c), strconv.Itoa(c)})
		}
		tp := figure{title: "Unary calls: throughput against concurrency", cols: len(s.Keys)}
		lat := figure{title: fmt.Sprintf("Unary calls: latency distribution at concurrency 1 (solid) and %d (dashed)", s.ProfileConcurrency),
			cols: len(s.Keys)}
		for _, call := range s.Calls {
			for _, key := range s.Keys {
				tc := chart{title: fmt.Sprintf("%s, %s key", callName(call), key), xLabel: "concurrent callers", yLabel: "calls/s",
					xScale: logarithmic, yScale: linear, yFromZero: true, xTicks: concTicks}
				lc := chart{title: fmt.Sprintf("%s, %s key", callName(call), key), xLabel: "quantile", yLabel: "latency (ms)",
					xScale: nines, yScale: logarithmic}
				for _, face := range s.Faces {
					ts := series{name: faceName(face), color: faceColors[face]}
					for _, c := range s.Concurrency {
						if u, ok := r.row(key, face, call, c); ok {
							ts.points = append(ts.points, point{float64(c), u.PerSecond})
						}
					}
					tc.series = append(tc.series, ts)
					for _, c := range []int{1, s.ProfileConcurrency} {
						u, ok := r.row(key, face, call, c)
						if !ok {
							continue
						}
						ls := series{name: fmt.Sprintf("%s, concurrency %d", faceName(face), c), color: faceColors[face], dashed: c != 1}
						for _, q := range u.Quantiles {
							ls.points = append(ls.points, point{q.Q, msOf(q.Latency)})
						}
						lc.series = append(lc.series, ls)
					}
				}
				tp.charts = append(tp.charts, tc)
				lat.charts = append(lat.charts, lc)
			}
		}
		out["throughput.svg"] = tp.svg()
		out["latency.svg"] = lat.svg()
	}
	if r.Idle != nil && len(r.Idle.Points) > 1 {
		c := chart{title: fmt.Sprintf("%.1f kB per stream", r.Idle.PerStream/1000), xLabel: "idle Watch streams", yLabel: "gateway RSS (MiB)",
			xScale: linear, yScale: linear, yFromZero: true}
		rs := series{name: "resident memory", color: faceColors[faceGRPC]}
		for _, p := range r.Idle.Points {
			rs.points = append(rs.points, point{float64(p.Streams), float64(p.RSS) / (1 << 20)})
		}
		c.series = append(c.series, rs)
		out["rss.svg"] = figure{title: "Gateway memory against idle streams", cols: 1, charts: []chart{c}}.svg()
	}
	if len(r.Fanout) > 0 {
		c := chart{title: "webhook sent → event received by the subscriber", xLabel: "quantile", yLabel: "latency (ms)",
			xScale: nines, yScale: logarithmic}
		colors := []string{"#1f77b4", "#e6550d", "#31a354"}
		for i, f := range r.Fanout {
			c.series = append(c.series, series{
				name:   fmt.Sprintf("%d %s at %d events/s", f.Subscribers, f.Name, f.EventsPerSecond),
				color:  colors[i%len(colors)],
				points: summaryPoints(f.Latency),
			})
			c.series = append(c.series, series{
				name:   fmt.Sprintf("its webhook POST (%s)", f.Name),
				color:  colors[i%len(colors)],
				dashed: true,
				points: summaryPoints(f.IngestLatency),
			})
		}
		out["fanout.svg"] = figure{title: "Event streams: latency distribution", cols: 1, charts: []chart{c}}.svg()
	}
	return out
}

func summaryPoints(s loadtest.Summary) []point {
	if s.Count == 0 {
		return nil
	}
	return []point{{0.5, msOf(s.P50)}, {0.9, msOf(s.P90)}, {0.99, msOf(s.P99)}, {0.999, msOf(s.P999)}, {1, msOf(s.Max)}}
}
