package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Verdict is one target and what the run measured for it.
type Verdict struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// row finds a unary measurement.
func (r *Results) row(key, face, call string, concurrency int) (UnaryRow, bool) {
	for _, u := range r.Unary {
		if u.Key == key && u.Face == face && u.Call == call && u.Concurrency == concurrency {
			return u, true
		}
	}
	return UnaryRow{}, false
}

func (r *Results) floor(face string, concurrency int) (UnaryRow, bool) {
	for _, u := range r.Floor {
		if u.Face == face && u.Concurrency == concurrency {
			return u, true
		}
	}
	return UnaryRow{}, false
}

func (r *Results) signing(key string) (SigningBound, bool) {
	for _, b := range r.Signing {
		if b.Key == key {
			return b, true
		}
	}
	return SigningBound{}, false
}

// verdicts judges the run against the gateway's targets, where it
// measured what they need. Latency added is read at concurrency 1 (one
// call at a time: its own cost, not queueing); CPU per call at the
// profile concurrency (the gateway busy, as under load).
func verdicts(r *Results) []Verdict {
	var out []Verdict
	pc := r.Settings.ProfileConcurrency
	for _, call := range r.Settings.Calls {
		what := callName(call)
		d, okD := r.row("Ed25519", faceDirect, call, 1)
		g, okG := r.row("Ed25519", faceGRPC, call, 1)
		rest, okR := r.row("Ed25519", faceREST, call, 1)
		if okD && okG {
			added := g.P50 - d.P50
			measured := fmt.Sprintf("%s (p50 %s against %s), concurrency 1", us(added), us(g.P50), us(d.P50))
			if f, ok := r.floor(faceFloorGRPC, 1); ok {
				measured += fmt.Sprintf("; a bare grpc-go round trip alone takes %s here, the gateway's own work %s", us(f.P50), us(added-f.P50))
			}
			if p, ok := r.floor(faceFloorProxy, 1); ok {
				if sign, ok := r.signing("Ed25519"); ok {
					// The proxy makes the direct client's round trip less its
					// signature, behind a gRPC call: what it adds is the least
					// any gateway adds here.
					measured += fmt.Sprintf("; a bare gRPC → HTTP proxy (no signing, JSON or interceptors) takes %s, so adds %s by itself",
						us(p.P50), us(p.P50+sign.SignTime-d.P50))
				}
			}
			out = append(out, Verdict{
				Target:   fmt.Sprintf("Ed25519, %s: gRPC adds ≤ 150 µs median over the direct signed client", what),
				Measured: measured,
				Met:      added <= 150*time.Microsecond,
			})
			if okR {
				restAdded := rest.P50 - d.P50
				ratio := float64(restAdded) / float64(max(added, 1))
				out = append(out, Verdict{
					Target:   fmt.Sprintf("Ed25519, %s: REST ≤ 1.2× gRPC, median latency added over direct", what),
					Measured: fmt.Sprintf("%.2f× (REST adds %s, gRPC %s), concurrency 1", ratio, us(restAdded), us(added)),
					Met:      ratio <= 1.2,
				})
			}
		}
		gc, okG := r.row("Ed25519", faceGRPC, call, pc)
		rc, okR := r.row("Ed25519", faceREST, call, pc)
		if okG && okR && gc.GatewayCPU > 0 {
			ratio := float64(rc.GatewayCPU) / float64(gc.GatewayCPU)
			out = append(out, Verdict{
				Target:   fmt.Sprintf("Ed25519, %s: REST ≤ 1.2× gRPC, gateway CPU per call", what),
				Measured: fmt.Sprintf("%.2f× (%s against %s), concurrency %d", ratio, us(rc.GatewayCPU), us(gc.GatewayCPU), pc),
				Met:      ratio <= 1.2,
			})
		}
		sign, ok := r.signing("P-521")
		for _, f := range []struct {
			face string
			want float64
		}{{faceGRPC, 0.90}, {faceREST, 0.85}} {
			u, okU := r.row("P-521", f.face, call, pc)
			if !ok || !okU || u.GatewayCPU <= 0 {
				continue
			}
			share := float64(sign.SignTime) / float64(u.GatewayCPU)
			measured := fmt.Sprintf("%.1f%% (%s signing of %s per call), concurrency %d; %.0f calls/s against a bound of %.0f",
				100*share, us(sign.SignTime), us(u.GatewayCPU), pc, u.PerSecond, sign.PerSecond)
			if inGateway := u.CPUShares["signing"]; inGateway > 0 {
				// Measured inside the gateway, under the load: see profile.go.
				share = inGateway
				measured = fmt.Sprintf("%.1f%% of the gateway's CPU is signing (its CPU profile at concurrency %d); %s CPU per call, "+
					"%.0f calls/s against a bound of %.0f (one signature alone: %s)",
					100*share, pc, us(u.GatewayCPU), u.PerSecond, sign.PerSecond, us(sign.SignTime))
			}
			proxyFace, proxyName := faceFloorProxy, "gRPC"
			if f.face == faceREST {
				proxyFace, proxyName = faceFloorHTTPProxy, "HTTP"
			}
			if p, ok := r.floor(proxyFace, pc); ok && p.GatewayCPU > 0 {
				// A gateway with no work of its own besides signing.
				measured += fmt.Sprintf("; a bare %s → HTTP proxy spends %s CPU per call here, which with the signature alone caps the share at %.1f%%",
					proxyName, us(p.GatewayCPU), 100*float64(sign.SignTime)/float64(sign.SignTime+p.GatewayCPU))
			}
			out = append(out, Verdict{
				Target: fmt.Sprintf("P-521, %s: %s throughput ≥ %.0f%% of the signing bound by CPU (signing CPU ÷ gateway CPU per call)",
					what, faceName(f.face), 100*f.want),
				Measured: measured,
				Met:      share >= f.want,
			})
		}
	}
	if r.Idle != nil {
		out = append(out, Verdict{
			Target:   fmt.Sprintf("≤ 20 kB RSS per idle stream (%d streams)", r.Idle.Streams),
			Measured: fmt.Sprintf("%.1f kB", r.Idle.PerStream/1000),
			Met:      r.Idle.PerStream <= 20000,
		})
	}
	for _, f := range r.Fanout {
		limit := 50 * time.Millisecond
		if f.PerAccountGroup {
			limit = 10 * time.Millisecond
		}
		target := fmt.Sprintf("%d %s subscribers at %d events/s: webhook → subscriber p99 ≤ %v", f.Subscribers, f.Name, f.EventsPerSecond, limit)
		measured := fmt.Sprintf("p50 %s, p99 %s; CPU pressure %.0f%%", ms(f.Latency.P50), ms(f.Latency.P99), f.CPUPressure)
		met := f.Latency.P99 <= limit
		if !f.PerAccountGroup {
			target += ", ingest not slowed"
			measured += fmt.Sprintf("; ingest %.0f events/s, %d deliveries late, POST p50 %s (%s without subscribers)",
				f.IngestPerSecond, f.IngestLate, ms(f.IngestLatency.P50), ms(f.IngestBaseline.P50))
			met = met && f.IngestLate == 0 && f.IngestPerSecond >= 0.95*float64(f.EventsPerSecond)
		}
		out = append(out, Verdict{Target: target, Measured: measured, Met: met})
	}
	if r.Ingest != nil {
		out = append(out, Verdict{
			Target: "durable webhook ingest ≥ 20,000 events/s (deliveries of 100)",
			Measured: fmt.Sprintf("%.0f events/s, delivery p99 %s; CPU pressure %.0f%%", r.Ingest.EventsPerSecond,
				ms(r.Ingest.DeliveryP99), r.Ingest.CPUPressure),
			Met: r.Ingest.EventsPerSecond >= 20000,
		})
	}
	return out
}

func callName(call string) string {
	if call == callRead {
		return "read (GetTopup)"
	}
	return "create (CreateTopup)"
}

func faceName(face string) string {
	switch face {
	case faceGRPC:
		return "gRPC"
	case faceREST:
		return "REST"
	}
	return "direct"
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// summary is the run as markdown.
func summary(r *Results) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# gateway-bench results\n\n")
	fmt.Fprintf(&b, "Run %s, %v. Machine: %d CPUs (%s), %s memory, Linux %s, %s, %s. ", r.Started.Format(time.RFC3339),
		r.Elapsed.Round(time.Second), m.CPUs, cmp.Or(m.CPUModel, "unknown"), cmp.Or(m.MemTotal, "unknown"), cmp.Or(m.Kernel, "?"), m.GoVersion, m.OSArch)
	if r.CPUPressure >= 0 {
		fmt.Fprintf(&b, "CPU pressure over the run (some task waiting for a CPU, ours included): %.0f%%.", r.CPUPressure)
	}
	s := r.Settings
	fmt.Fprintf(&b, "\n\nSettings: unary %v measured after %v of warm-up per cell, concurrency %v, CPU per call read at concurrency %d; "+
		"the simulator checks one signature in %d; the simulator, load generators and subscribers run with GOGC=%d, the gateway with its own. "+
		"Streams: %d idle in %d steps; %d per-account-group subscribers at %d events/s; "+
		"%d unfiltered at %d events/s; %d events per delivery, %v measured after %v; the subscribers decode of each message only whether it is an event "+
		"and its created_at; ingest %d deliveries of 100 from %d senders; the simulator speaks %s on loopback.%s\n\n",
		s.Duration, s.Warmup, s.Concurrency, s.ProfileConcurrency, s.SimVerifyOneIn, cmp.Or(s.LoadGCPercent, 100), s.IdleStreams, s.IdleSteps, s.GroupSubscribers,
		s.GroupRate, s.UnfilteredSubscribers, s.UnfilteredRate, s.EventsPerDelivery, s.StreamDuration, s.StreamWarmup,
		s.IngestDeliveries, s.IngestSenders, map[bool]string{true: "HTTP/2 over TLS", false: "plain HTTP/1.1"}[s.UpstreamTLS],
		map[bool]string{true: " (quick mode)", false: ""}[s.Quick])

	if len(r.Targets) > 0 {
		b.WriteString("## Targets\n\n| target | measured | met |\n|---|---|---|\n")
		for _, v := range r.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", v.Target, v.Measured, map[bool]string{true: "yes", false: "**no**"}[v.Met])
		}
		b.WriteString("\n")
	}
	if len(r.Signing) > 0 {
		b.WriteString("## Signing\n\n| key | one signature | bound (cores ÷ signature) |\n|---|---|---|\n")
		for _, sb := range r.Signing {
			fmt.Fprintf(&b, "| %s | %s | %.0f calls/s |\n", sb.Key, us(sb.SignTime), sb.PerSecond)
		}
		b.WriteString("\n")
	}
	if len(r.Floor) > 0 {
		b.WriteString("## Transport floor\n\nA bare grpc-go unary call (the health check) and a bare net/http GET answered with a top-up's JSON, " +
			"each to a process of its own on loopback: what a round trip costs here with nothing behind it. " +
			"The bare proxies are a gRPC call and an HTTP/1.1 GET whose handler makes that GET to a bare server in the bench process: " +
			"a gateway's two faces without signing, JSON or interceptors. " +
			"Calls/s, p50 / p99 latency, and the serving process's CPU per call.\n\n| round trip |")
		for _, c := range s.Concurrency {
			fmt.Fprintf(&b, " c=%d |", c)
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(s.Concurrency)) + "\n")
		for _, face := range floorFaces {
			fmt.Fprintf(&b, "| %s |", map[string]string{faceFloorGRPC: "bare gRPC", faceFloorHTTP: "bare HTTP/1.1", faceFloorProxy: "bare gRPC → HTTP proxy",
				faceFloorHTTPProxy: "bare HTTP → HTTP proxy"}[face])
			for _, c := range s.Concurrency {
				if u, ok := r.floor(face, c); ok {
					fmt.Fprintf(&b, " %.0f/s, %s / %s, CPU %s |", u.PerSecond, us(u.P50), us(u.P99), us(u.GatewayCPU))
				} else {
					b.WriteString(" — |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	for _, call := range s.Calls {
		rows := slices.DeleteFunc(slices.Clone(r.Unary), func(u UnaryRow) bool { return u.Call != call })
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "## Unary: %s\n\nCalls/s, p50 / p99 latency, and the gateway's CPU per call.\n\n", callName(call))
		b.WriteString("| key | face |")
		for _, c := range s.Concurrency {
			fmt.Fprintf(&b, " c=%d |", c)
		}
		b.WriteString("\n|---|---|" + strings.Repeat("---|", len(s.Concurrency)) + "\n")
		for _, key := range s.Keys {
			for _, face := range s.Faces {
				fmt.Fprintf(&b, "| %s | %s |", key, faceName(face))
				for _, c := range s.Concurrency {
					u, ok := r.row(key, face, call, c)
					if !ok {
						b.WriteString(" — |")
						continue
					}
					fmt.Fprintf(&b, " %.0f/s, %s / %s", u.PerSecond, us(u.P50), us(u.P99))
					if u.GatewayCPU > 0 {
						fmt.Fprintf(&b, ", CPU %s", us(u.GatewayCPU))
					}
					b.WriteString(" |")
				}
				b.WriteString("\n")
			}
		}
		b.WriteString("\n")
	}
	if rows := slices.DeleteFunc(slices.Clone(r.Unary), func(u UnaryRow) bool { return len(u.CPUShares) == 0 }); len(rows) > 0 {
		fmt.Fprintf(&b, "## Where the gateway's CPU goes\n\nShares of the gateway's CPU profile at concurrency %d "+
			"(a sample counts for the first part, left to right, whose functions are on its stack; profiles in `profiles/`).\n\n",
			s.ProfileConcurrency)
		var heads []string
		var shares []CPUShares
		for _, u := range rows {
			heads = append(heads, fmt.Sprintf("%s | %s | %s", u.Key, faceName(u.Face), u.Call))
			shares = append(shares, u.CPUShares)
		}
		sharesTable(&b, "key | face | call", heads, shares)
	}
	if len(r.Fanout) > 0 {
		b.WriteString("## Webhook → subscriber\n\n| scenario | p50 | p90 | p99 | p99.9 | max | received | ingest | POST p50 (without subscribers) | gateway | CPU pressure |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, f := range r.Fanout {
			l := f.Latency
			fmt.Fprintf(&b, "| %d %s at %d events/s | %s | %s | %s | %s | %s | %d of %d | %.0f events/s, %d late | %s (%s) | %.2f cores | %.0f%% |\n",
				f.Subscribers, f.Name, f.EventsPerSecond, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), f.Received, f.Expected,
				f.IngestPerSecond, f.IngestLate, ms(f.IngestLatency.P50), ms(f.IngestBaseline.P50), f.GatewayCores, f.CPUPressure)
		}
		b.WriteString("\n")
	}
	if rows := slices.DeleteFunc(slices.Clone(r.Fanout), func(f FanoutRow) bool { return len(f.CPUShares) == 0 }); len(rows) > 0 {
		b.WriteString("Where the gateway's CPU goes in the fan-out scenarios, from its CPU profile over the measured seconds:\n\n")
		var heads []string
		var shares []CPUShares
		for _, f := range rows {
			heads = append(heads, fmt.Sprintf("%d %s at %d events/s", f.Subscribers, f.Name, f.EventsPerSecond))
			shares = append(shares, f.CPUShares)
		}
		sharesTable(&b, "scenario", heads, shares)
	}
	if in := r.Ingest; in != nil {
		fmt.Fprintf(&b, "## Durable ingest\n\n%d events in deliveries of 100: **%.0f events/s**, delivery p50 %s, p99 %s, the gateway at %.2f cores; CPU pressure %.0f%%. "+
			"Signature check per delivery of 100 events (left out above, the deliveries are signed with Ed25519): Ed25519 %s, P-521 %s.\n\n",
			in.Events, in.EventsPerSecond, ms(in.DeliveryP50), ms(in.DeliveryP99), in.GatewayCores, in.CPUPressure, us(in.VerifyEd25519), us(in.VerifyP521))
	}
	if id := r.Idle; id != nil {
		fmt.Fprintf(&b, "## Idle streams\n\n%d streams opened in %v: **%.1f kB RSS per stream**", id.Streams, id.Open.Round(time.Millisecond), id.PerStream/1000)
		if len(id.Parts) > 0 {
			var parts []string
			for _, name := range slices.Sorted(maps.Keys(id.Parts)) {
				v := id.Parts[name]
				if name == "goroutines" {
					parts = append(parts, fmt.Sprintf("%.2f %s", v, name))
				} else {
					parts = append(parts, fmt.Sprintf("%.1f kB %s", v/1000, name))
				}
			}
			fmt.Fprintf(&b, "; per stream, by the gateway's own gauges: %s", strings.Join(parts, ", "))
		}
		b.WriteString(".\n\n| streams | RSS |\n|---|---|\n")
		for _, p := range id.Points {
			fmt.Fprintf(&b, "| %d | %.1f MiB |\n", p.Streams, float64(p.RSS)/(1<<20))
		}
		b.WriteString("\n")
	}
	if len(r.ColdStarts) > 0 {
		sorted := slices.Clone(r.ColdStarts)
		slices.Sort(sorted)
		parts := make([]string, len(r.ColdStarts))
		for i, d := range r.ColdStarts {
			parts[i] = ms(d)
		}
		fmt.Fprintf(&b, "## Cold start\n\nProcess start to ready (/readyz 200), fresh data directory: median %s (%s).\n",
			ms(sorted[len(sorted)/2]), strings.Join(parts, ", "))
	}
	return b.String()
}

// sharesTable writes a table of CPU shares by part, a row per profile: its
// head's columns (head, "|"-separated), then a share per part.
func sharesTable(b *strings.Builder, head string, heads []string, shares []CPUShares) {
	names := partNames()
	cols := strings.Count(head, "|") + 1
	fmt.Fprintf(b, "| %s | %s |\n|%s%s\n", head, strings.Join(names, " | "), strings.Repeat("---|", cols), strings.Repeat("---|", len(names)))
	for i, h := range heads {
		fmt.Fprintf(b, "| %s |", h)
		for _, n := range names {
			fmt.Fprintf(b, " %.1f%% |", 100*shares[i][n])
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}
