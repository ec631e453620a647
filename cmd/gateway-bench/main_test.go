package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the floor's server process, as the
// command's binary is (floor.go re-executes itself).
func TestMain(m *testing.M) {
	if os.Getenv(floorServerEnv) == "1" {
		os.Exit(serveFloor())
	}
	os.Exit(m.Run())
}

// The harness in its smallest mode, end to end: the gateway built and
// started, every scenario run, the results, summary and plots written.
// It checks that everything ran and was written, not how fast.
func TestSmallestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	out := t.TempDir()
	var log bytes.Buffer
	args := []string{"-quick", "-out", out, "-keys", "Ed25519", "-concurrency", "1", "-profile-concurrency", "1", "-warmup", "20ms", "-duration", "100ms",
		"-idle-streams", "20", "-idle-steps", "2", "-group-subscribers", "10", "-group-rate", "100", "-unfiltered-subscribers", "5",
		"-unfiltered-rate", "50", "-stream-conns", "1", "-stream-warmup", "50ms", "-stream-duration", "300ms",
		"-ingest-deliveries", "6", "-ingest-senders", "2"}
	res := runBench(t, out, args, &log)
	if len(res.Unary) != 6 { // 3 faces × 2 calls × 1 concurrency × 1 key
		t.Errorf("%d unary rows, want 6", len(res.Unary))
	}
	signed := 0.0
	for _, u := range res.Unary {
		if u.Calls == 0 || u.Failed != 0 || len(u.Quantiles) == 0 || u.Face == faceDirect && u.GatewayCPU != 0 {
			t.Errorf("unary row %+v", u)
		}
		// Profiled at concurrency 1: the gateway's faces.
		if (u.Face != faceDirect) != (len(u.CPUShares) > 0) {
			t.Errorf("unary row %s %s: CPU shares %v", u.Face, u.Call, u.CPUShares)
		}
		signed += u.CPUShares["signing"]
	}
	if signed == 0 { // a second's profile each, of calls that all sign
		t.Error("no profile found the gateway signing")
	}
	if len(res.Floor) != 4 { // bare gRPC, HTTP and the two proxies × 1 concurrency
		t.Errorf("%d transport floor rows, want 4", len(res.Floor))
	}
	for _, f := range res.Floor {
		if f.Calls == 0 || f.Failed != 0 || f.P50 <= 0 || f.GatewayCPU <= 0 {
			t.Errorf("transport floor row %+v", f)
		}
	}
	if len(res.Signing) != 1 || res.Signing[0].SignTime <= 0 {
		t.Errorf("signing %+v", res.Signing)
	}
	if res.Ingest == nil || res.Ingest.Events != 600 || res.Idle == nil || len(res.Idle.Points) != 3 || len(res.Fanout) != 2 {
		t.Errorf("ingest %+v, idle %+v, %d fan-out rows", res.Ingest, res.Idle, len(res.Fanout))
	}
	if len(res.ColdStarts) != 2 || slices.Contains(res.ColdStarts, 0) {
		t.Errorf("cold starts %v, want one per gateway started (2)", res.ColdStarts)
	}
	if len(res.Targets) == 0 {
		t.Error("no targets judged")
	}

	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "## Signing", "## Transport floor", "## Where the gateway's CPU goes", "## Unary: read", "## Unary: create", "## Webhook → subscriber",
		"## Durable ingest", "## Idle streams", "## Cold start", "quick mode"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md has no %q", want)
		}
	}
	for _, name := range []string{"throughput.svg", "latency.svg", "rss.svg", "fanout.svg"} {
		checkSVG(t, filepath.Join(out, name))
	}
}

// TestUpstreamTLS: with -upstream-tls every upstream request, the direct
// client's, the gateway's and the bare proxies', is HTTP/2 over TLS.
func TestUpstreamTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	out := t.TempDir()
	var log bytes.Buffer
	args := []string{"-upstream-tls", "-scenarios", "unary", "-out", out, "-keys", "Ed25519", "-calls", "read", "-concurrency", "1",
		"-profile=false", "-warmup", "20ms", "-duration", "100ms"}
	res := runBench(t, out, args, &log)
	if len(res.Unary) != 3 || len(res.Floor) != 4 {
		t.Fatalf("%d unary rows, %d floor rows, want 3 and 4", len(res.Unary), len(res.Floor))
	}
	for _, u := range append(res.Unary, res.Floor...) {
		if u.Calls == 0 || u.Failed != 0 {
			t.Errorf("row %s %s: %d calls, %d failed", u.Face, u.Call, u.Calls, u.Failed)
		}
	}
	var h2, h1 int
	for line := range strings.Lines(log.String()) {
		if _, err := fmt.Sscanf(line, "upstream requests over TLS: %d over HTTP/2, %d over HTTP/1.1", &h2, &h1); err == nil {
			break
		}
	}
	// The bare proxy's requests alone are thousands.
	if h2 < 100 || h1 != 0 {
		t.Fatalf("upstream requests: %d over HTTP/2, %d over HTTP/1.1\n%s", h2, h1, log.String())
	}
}

// runBench runs the command with args, writing to out, and reads its
// results.
func runBench(t *testing.T, out string, args []string, log *bytes.Buffer) Results {
	t.Helper()
	if code := run(t.Context(), args, log, log); code != 0 {
		t.Fatalf("exit %d:\n%s", code, log.String())
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// checkSVG checks that path is well-formed XML with an svg root.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" || !bytes.Contains(data, []byte("<polyline")) {
		t.Errorf("%s: root %q, or no line drawn", path, root)
	}
}

func TestParseSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
		test func(Settings) bool
	}{
		{"defaults", nil, true, func(s Settings) bool {
			return slices.Equal(s.Concurrency, []int{1, 8, 32, 128}) && len(s.Keys) == 3 && s.IdleStreams == 10000 && !s.Quick
		}},
		{"quick", []string{"-quick"}, true, func(s Settings) bool {
			return slices.Equal(s.Concurrency, []int{1, 8}) && s.IdleStreams == 200 && s.Duration == 400*time.Millisecond
		}},
		{"quick, flags given win", []string{"-quick", "-concurrency", "4", "-idle-streams", "7"}, true, func(s Settings) bool {
			return slices.Equal(s.Concurrency, []int{4}) && s.IdleStreams == 7 && s.GroupSubscribers == 200
		}},
		{"lists", []string{"-keys", "P-256, Ed25519", "-faces", "grpc", "-calls", "read", "-scenarios", "unary,idle"}, true, func(s Settings) bool {
			return slices.Equal(s.Keys, []string{"P-256", "Ed25519"}) && slices.Equal(s.Faces, []string{"grpc"}) &&
				slices.Equal(s.Calls, []string{"read"}) && slices.Equal(s.Scenarios, []string{"unary", "idle"})
		}},
		{"unknown key", []string{"-keys", "RSA"}, false, nil},
		{"unknown scenario", []string{"-scenarios", "chaos"}, false, nil},
		{"no face", []string{"-faces", ","}, false, nil},
		{"bad concurrency", []string{"-concurrency", "1,0"}, false, nil},
		{"concurrency not a number", []string{"-concurrency", "many"}, false, nil},
		{"zero duration", []string{"-duration", "0s"}, false, nil},
		{"every signature checked", []string{"-sim-verify-one-in", "1"}, true, func(s Settings) bool { return s.SimVerifyOneIn == 1 }},
		{"no signature checked", []string{"-sim-verify-one-in", "0"}, false, nil},
		{"arguments", []string{"extra"}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSettings(tc.args, io.Discard)
			if (err == nil) != tc.ok {
				t.Fatalf("parseSettings(%q) error %v, want ok %v", tc.args, err, tc.ok)
			}
			if tc.ok && !tc.test(s) {
				t.Errorf("parseSettings(%q) = %+v", tc.args, s)
			}
		})
	}
}

func FuzzParseSettings(f *testing.F) {
	for _, seed := range []string{"-quick", "-keys P-521,Ed25519 -concurrency 1,2,3", "-faces ,grpc, -calls read", "-concurrency -1", "-duration 1h -quick"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := parseSettings(strings.Fields(line), io.Discard)
		if err != nil {
			return
		}
		if len(s.Keys) == 0 || len(s.Faces) == 0 || len(s.Calls) == 0 || len(s.Scenarios) == 0 || len(s.Concurrency) == 0 ||
			slices.Min(s.Concurrency) < 1 || s.Duration <= 0 || s.SimVerifyOneIn < 1 {
			t.Fatalf("parseSettings(%q) accepted %+v", line, s)
		}
	})
}
