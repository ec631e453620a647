package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/upvest-gateway/gateway/internal/loadtest"
)

// Results are everything one run measured.
type Results struct {
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Machine  Machine       `json:"machine"`
	Settings Settings      `json:"settings"`

	Signing []SigningBound `json:"signing"`
	Unary   []UnaryRow     `json:"unary"`
	// Floor is the bare round trips (floor.go), by concurrency.
	Floor      []UnaryRow      `json:"transport_floor,omitempty"`
	Ingest     *IngestRow      `json:"ingest,omitempty"`
	Fanout     []FanoutRow     `json:"fanout,omitempty"`
	Idle       *IdleRow        `json:"idle,omitempty"`
	ColdStarts []time.Duration `json:"cold_starts_ns"`
	// CPUPressure is the machine's over the whole run (%).
	CPUPressure float64   `json:"cpu_pressure_percent"`
	Targets     []Verdict `json:"targets"`
}

// Machine is what the numbers were measured on.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  string `json:"mem_total"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	OSArch    string `json:"os_arch"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField is the value of the first "name: value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// bench runs the scenarios of s and writes the results.
func bench(ctx context.Context, s Settings, log io.Writer) error {
	res := &Results{Started: time.Now().UTC(), Machine: machine(), Settings: s}
	pressure, pressureKnown := loadtest.CPUPressure()
	if err := os.MkdirAll(s.Out, 0o755); err != nil {
		return err
	}
	if s.Profile {
		if err := os.MkdirAll(filepath.Join(s.Out, "profiles"), 0o755); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "gateway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := s.Gateway
	if bin == "" {
		fmt.Fprintln(log, "building the gateway")
		if bin, err = buildGateway(ctx, work); err != nil {
			return err
		}
	}

	t, err := newTenant()
	if err != nil {
		return err
	}
	webhooks, err := loadtest.NewWebhookSigner(nil)
	if err != nil {
		return err
	}
	var up *upstreamTLS
	if s.UpstreamTLS {
		if up, err = newUpstreamTLS(work); err != nil {
			return err
		}
	}
	sim, err := startSimulator(t, webhooks, s.SimVerifyOneIn, up)
	if err != nil {
		return err
	}
	defer sim.close()
	gateways := 0
	start := func(keyName string) (*gatewayProcess, error) {
		gateways++
		keyFile, err := t.writeKey(work, keyName)
		if err != nil {
			return nil, err
		}
		gw, err := startGateway(ctx, gatewayConfig{bin: bin, dataDir: filepath.Join(work, fmt.Sprintf("data-%d", gateways)),
			simURL: sim.url, upstream: up, tenant: t, keyName: keyName, keyFile: keyFile, webhookID: loadtest.WebhookID})
		if err != nil {
			return nil, err
		}
		res.ColdStarts = append(res.ColdStarts, gw.coldStart)
		fmt.Fprintf(log, "gateway (%s key) ready in %v\n", keyName, gw.coldStart.Round(time.Millisecond))
		return gw, nil
	}

	if slices.Contains(s.Scenarios, scenarioUnary) {
		signFor := 2 * time.Second
		if s.Quick {
			signFor = 200 * time.Millisecond
		}
		for _, name := range s.Keys {
			b, err := signingBound(t.keys[name], name, runtime.NumCPU(), signFor)
			if err != nil {
				return err
			}
			fmt.Fprintf(log, "signing %s: %v, bound %.0f calls/s on %d cores\n", name, b.SignTime.Round(100*time.Nanosecond), b.PerSecond, runtime.NumCPU())
			res.Signing = append(res.Signing, b)
		}
		if res.Floor, err = runFloor(ctx, s, up, log); err != nil {
			return err
		}
		for _, name := range s.Keys {
			rows, err := unaryWithKey(ctx, s, t, sim, name, start, log)
			if err != nil {
				return err
			}
			res.Unary = append(res.Unary, rows...)
		}
		if up != nil {
			fmt.Fprintf(log, "upstream requests over TLS: %d over HTTP/2, %d over HTTP/1.1\n", up.http2.Load(), up.http1.Load())
		}
	}

	if slices.ContainsFunc(s.Scenarios, func(n string) bool { return n != scenarioUnary }) {
		if err := streams(ctx, s, res, webhooks, start, log); err != nil {
			return err
		}
	}

	res.Elapsed = time.Since(res.Started)
	res.CPUPressure = -1
	if now, ok := loadtest.CPUPressure(); ok && pressureKnown {
		res.CPUPressure = 100 * float64(now-pressure) / float64(res.Elapsed)
	}
	res.Targets = verdicts(res)
	return write(s.Out, res, log)
}

// unaryWithKey runs the unary scenario with a gateway signing with the
// named key.
func unaryWithKey(ctx context.Context, s Settings, t *tenant, sim *simulator, name string,
	start func(string) (*gatewayProcess, error), log io.Writer,
) ([]UnaryRow, error) {
	direct, err := t.directClient(sim, name)
	if err != nil {
		return nil, err
	}
	gw, err := start(name)
	if err != nil {
		return nil, err
	}
	rows, err := runUnary(ctx, s, name, direct, gw, log)
	if serr := gw.stop(); err == nil {
		err = serr
	}
	return rows, err
}

// streams runs the event-stream scenarios on a gateway of their own: idle
// streams first, on a gateway that has served nothing yet.
func streams(ctx context.Context, s Settings, res *Results, webhooks *loadtest.WebhookSigner,
	start func(string) (*gatewayProcess, error), log io.Writer,
) (err error) {
	gw, err := start("Ed25519")
	if err != nil {
		return err
	}
	defer func() {
		if serr := gw.stop(); err == nil {
			err = serr
		}
	}()
	if slices.Contains(s.Scenarios, scenarioIdle) {
		idle, err := runIdle(ctx, s, gw, log)
		if err != nil {
			return err
		}
		res.Idle = &idle
	}
	if slices.Contains(s.Scenarios, scenarioFanout) {
		for _, f := range []struct {
			name            string
			subscribers     int
			rate            int
			perAccountGroup bool
		}{
			{"per account group", s.GroupSubscribers, s.GroupRate, true},
			{"unfiltered", s.UnfilteredSubscribers, s.UnfilteredRate, false},
		} {
			row, err := runFanout(ctx, s, gw, webhooks, f.name, f.subscribers, f.rate, f.perAccountGroup, log)
			if err != nil {
				return err
			}
			res.Fanout = append(res.Fanout, row)
		}
	}
	if slices.Contains(s.Scenarios, scenarioIngest) {
		in, err := runIngest(ctx, s, gw, webhooks, log)
		if err != nil {
			return err
		}
		res.Ingest = &in
	}
	return nil
}

// write saves results.json, results.md and the plots in dir.
func write(dir string, res *Results, log io.Writer) error {
	var js bytes.Buffer
	if err := encodeJSON(&js, res); err != nil {
		return err
	}
	files := map[string][]byte{"results.json": js.Bytes(), "results.md": []byte(summary(res))}
	for name, svg := range plots(res) {
		files[name] = svg
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return err
		}
		fmt.Fprintf(log, "wrote %s\n", filepath.Join(dir, name))
	}
	return nil
}
