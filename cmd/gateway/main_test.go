package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// TestMain lets a test start this very binary as the gateway: with
// GATEWAY_TEST_RUN_MAIN set, the process is main(), not the tests.
func TestMain(m *testing.M) {
	if os.Getenv("GATEWAY_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// runOnce runs the program in process with a context that is already
// cancelled, so a configuration that starts would stop at once.
func runOnce(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, env, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeKey(t *testing.T) string {
	t.Helper()
	_, keyFile, _ := simtest.WriteKey(t, t.TempDir())
	return keyFile
}

// TestRunStartupErrors: each start-up failure is one line on stderr naming
// the setting, exit status 2, no secret.
func TestRunStartupErrors(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN EC PRIVATE KEY-----\nnot base64\n-----END EC PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		setting string // the setting the line must name
	}{
		{"missing client id", with(validEnv(), "UPVEST_CLIENT_ID", ""), nil, "UPVEST_CLIENT_ID"},
		{"key file missing", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", "/nonexistent/key.pem"), nil, "UPVEST_SIGNING_KEY_FILE"},
		{"key file garbage", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", garbage), nil, "UPVEST_SIGNING_KEY_FILE"},
		{"key file is a directory", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", t.TempDir()), nil, "UPVEST_SIGNING_KEY_FILE"},
		{"gRPC address in use", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", busy.Addr().String()), nil, "GATEWAY_GRPC_ADDR"},
		{"data dir is a file", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0", "GATEWAY_DATA_DIR", garbage), nil, "GATEWAY_DATA_DIR"},
		{"HTTP address in use", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", busy.Addr().String()), nil, "GATEWAY_HTTP_ADDR"},
		{"admin address in use", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0",
			"GATEWAY_ADMIN_ADDR", busy.Addr().String()), nil, "GATEWAY_ADMIN_ADDR"},
		// The embedded log cannot be stored: said at once, not after the
		// event log's start-up time.
		{"data dir is a file", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0",
			"GATEWAY_ADMIN_ADDR", "127.0.0.1:0", "GATEWAY_DATA_DIR", garbage), nil, "GATEWAY_DATA_DIR"},
		{"bad log format", with(validEnv(), "GATEWAY_LOG_FORMAT", "xml"), nil, "GATEWAY_LOG_FORMAT"},
		{"bad OTEL exporter", with(validEnv(), "OTEL_TRACES_EXPORTER", "zipkin"), nil, "OTEL_TRACES_EXPORTER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runOnce(t, tc.env, tc.args...)
			if code != exitConfig {
				t.Errorf("exit status %d, want %d (stderr %q)", code, exitConfig, stderr)
			}
			if rec := fatalLine(t, stderr); !strings.HasPrefix(rec.Msg, "gateway: "+tc.setting) || rec.ExitCode != exitConfig {
				t.Errorf("stderr = %q, want one record whose message starts with %q", stderr, "gateway: "+tc.setting)
			}
			if strings.Contains(stderr+stdout, marker) {
				t.Errorf("a secret was printed: %q %q", stdout, stderr)
			}
		})
	}
}

// logRecord is a JSON log line of the gateway.
type logRecord struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Setting  string `json:"setting"`
	ExitCode int    `json:"exit_code"`
}

// fatalLine checks that stderr is one JSON record at level ERROR, and
// returns it.
func fatalLine(t *testing.T, stderr string) logRecord {
	t.Helper()
	var rec logRecord
	if strings.Count(stderr, "\n") != 1 || json.Unmarshal([]byte(stderr), &rec) != nil || rec.Level != "ERROR" {
		t.Errorf("stderr = %q, want one JSON record at level ERROR", stderr)
	}
	return rec
}

// TestRunStartupErrorText: with GATEWAY_LOG_FORMAT=text the fatal line is
// a text record, as every other line.
func TestRunStartupErrorText(t *testing.T) {
	code, _, stderr := runOnce(t, with(validEnv(), "UPVEST_CLIENT_ID", "", "GATEWAY_LOG_FORMAT", "text"))
	if code != exitConfig || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, `level=ERROR msg="gateway: UPVEST_CLIENT_ID is required (or --upvest-client-id)" setting=UPVEST_CLIENT_ID exit_code=2`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestRunStartsAndStops(t *testing.T) {
	// A real configuration (no I/O to Upvest happens before the first
	// call), stopped by the cancelled context right after start-up.
	dataDir := t.TempDir()
	env := with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0",
		"GATEWAY_ADMIN_ADDR", "127.0.0.1:0", "GATEWAY_DATA_DIR", dataDir)
	code, stdout, stderr := runOnce(t, env)
	if code != exitOK || !strings.Contains(stdout, "gateway: listening grpc=127.0.0.1:") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, marker) {
		t.Errorf("a secret was printed:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "no webhook subscription ids known") {
		t.Errorf("the start-up log does not say that deliveries are bound by client id alone:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "jetstream")); err != nil {
		t.Errorf("the embedded event log is not under GATEWAY_DATA_DIR: %v", err)
	}
}

// TestRunEventLogUnavailable: a NATS that cannot be reached stops start-up
// with one line and exit status 1 (not a setting's fault: NATS may come
// up), without the URL's credentials.
func TestRunEventLogUnavailable(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	env := with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0",
		"GATEWAY_ADMIN_ADDR", "127.0.0.1:0", "GATEWAY_NATS_URL", "nats://user:"+marker+"@"+addr)
	code, stdout, stderr := runOnce(t, env)
	if rec := fatalLine(t, stderr); code != exitFailure || !strings.HasPrefix(rec.Msg, "gateway: event log: ") || rec.Setting != "" {
		t.Errorf("exit %d, stderr %q, want 1 and one line about the event log", code, stderr)
	}
	if strings.Contains(stdout+stderr, marker) {
		t.Errorf("a secret was printed:\n%s\n%s", stdout, stderr)
	}
}

func TestRunHelp(t *testing.T) {
	code, stdout, _ := runOnce(t, nil, "-h")
	if code != exitOK || !strings.Contains(stdout, "-upvest-client-id") || !strings.Contains(stdout, "UPVEST_CLIENT_ID") {
		t.Errorf("-h: exit %d, usage %q", code, stdout)
	}
}

// TestSimulateSubprocess starts the gateway binary with --simulate on free
// ports, waits for its listening line, makes one REST call and stops it
// with SIGTERM.
func TestSimulateSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--simulate", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	// No UPVEST_* at all: --simulate needs none. JSON logs, though text is
	// the default with --simulate, and a shutdown delay long enough to see
	// readiness go first.
	cmd.Env = []string{"GATEWAY_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "GATEWAY_LOG_FORMAT=json", "GATEWAY_SHUTDOWN_DELAY=5s"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	listening := regexp.MustCompile(`^gateway: listening grpc=(\S+) http=(\S+)$`)
	adminListening := regexp.MustCompile(`^gateway: admin listening on (\S+) `)
	lines := bufio.NewScanner(stdout)
	var httpAddr, adminAddr string
	var out strings.Builder
	for (httpAddr == "" || adminAddr == "") && lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if m := listening.FindStringSubmatch(lines.Text()); m != nil {
			httpAddr = m[2]
		}
		if m := adminListening.FindStringSubmatch(lines.Text()); m != nil {
			adminAddr = m[1]
		}
	}
	if httpAddr == "" || adminAddr == "" {
		t.Fatalf("no listening lines; stdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }() // the examples that follow

	ag := uuid.NewString()
	res, err := http.Get("http://" + httpAddr + "/v1/account_groups/" + ag + "/payments/cash_balance")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), ag) || res.Header.Get("Upvest-Request-Id") == "" {
		t.Errorf("GET cash_balance = %d %s", res.StatusCode, body)
	}

	// The simulator delivers its webhooks to this gateway: a top-up created
	// over REST comes back on the event stream.
	watchReq, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/v1/payments/topups:watch?account_group_id="+ag, nil)
	watchReq.Header.Set("Accept", "text/event-stream")
	watch, err := http.DefaultClient.Do(watchReq)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Body.Close()
	events := bufio.NewScanner(watch.Body)
	nextEvent := func() string {
		for events.Scan() {
			if name, ok := strings.CutPrefix(events.Text(), "event: "); ok {
				return name
			}
		}
		t.Fatalf("the event stream ended: %v\nstderr:\n%s", events.Err(), stderr.String())
		return ""
	}
	if e := nextEvent(); e != "heartbeat" {
		t.Fatalf("first event %q, want heartbeat", e)
	}
	res, err = http.Post("http://"+httpAddr+"/v1/payments/topups", "application/json",
		strings.NewReader(`{"request_id":"`+uuid.NewString()+`","account_group_id":"`+ag+`","cash_amount":"10.00","currency":"EUR"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("create top-up: %d", res.StatusCode)
	}
	for e := nextEvent(); e != "event"; e = nextEvent() {
	}

	// The binary's metrics: its version, and the calls just made.
	metrics := get(t, "http://"+adminAddr+"/metrics")
	for _, want := range []string{`upvest_gateway_build_info{go_version=`, `version="dev"`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="CreateTopup",grpc_service="upvest.gateway.v1.TopupService",grpc_type="unary"} 1`,
		`upvest_gateway_streams_active{method="/upvest.gateway.v1.TopupService/WatchTopupEvents"} 1`,
		`upvest_gateway_webhook_deliveries_total{code="200"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Not ready first, while alive and serving.
	for deadline := time.Now().Add(20 * time.Second); ; {
		res, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never said 503 after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, url := range []string{"http://" + httpAddr + "/healthz", "http://" + httpAddr + "/v1/account_groups/" + ag + "/payments/cash_balance"} {
		if res, err := http.Get(url); err != nil || res.StatusCode != http.StatusOK {
			t.Errorf("GET %s while not ready: %v %v, want 200", url, res, err)
		} else {
			res.Body.Close()
		}
	}
	// The open stream ends with its resume token when the drain begins.
	ended := false
	for !ended && events.Scan() {
		if strings.HasPrefix(events.Text(), "data: ") && strings.Contains(events.Text(), `"SHUTTING_DOWN"`) {
			ended = true
			if !strings.Contains(events.Text(), `"resume_token":"`) {
				t.Errorf("the stream's end carries no resume token: %s", events.Text())
			}
		}
	}
	if !ended {
		t.Errorf("the stream did not end with SHUTTING_DOWN: %v", events.Err())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not exit after SIGTERM")
	}
	log := stderr.String()
	for _, want := range []string{"shutting down: not ready", "shutting down: draining", "gateway stopped", "event log closed"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the log:\n%s", want, log)
		}
	}
	for line := range strings.SplitSeq(strings.TrimSpace(log), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line not in the chosen format (json): %q", line)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return string(b)
}

// TestVersion: --version prints the version set at build time with
// -ldflags "-X main.version=...", and nothing else happens.
func TestVersion(t *testing.T) {
	code, stdout, stderr := runOnce(t, nil, "--version")
	if code != exitOK || !strings.HasPrefix(stdout, "gateway dev (") || stderr != "" {
		t.Errorf("--version: exit %d, %q %q", code, stdout, stderr)
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "gateway")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "gateway v9.8.7-test (") {
		t.Errorf("built with -X main.version: %q %v", out, err)
	}
}

// TestRunReplicas: on an external NATS the event streams get 3 replicas by
// default when the cluster has 3 servers, and start-up stops, naming the
// setting, when more replicas are configured than the cluster has servers.
func TestRunReplicas(t *testing.T) {
	cluster := eventstest.StartCluster(t, 3)
	single := eventstest.StartCluster(t, 1)
	base := with(validEnv(), "UPVEST_SIGNING_KEY_FILE", writeKey(t), "GATEWAY_GRPC_ADDR", "127.0.0.1:0", "GATEWAY_HTTP_ADDR", "127.0.0.1:0", "GATEWAY_ADMIN_ADDR", "127.0.0.1:0")

	code, _, stderr := runOnce(t, with(base, "GATEWAY_NATS_URL", single.URL(), "GATEWAY_NATS_REPLICAS", "3"))
	if rec := fatalLine(t, stderr); code != exitConfig || !strings.HasPrefix(rec.Msg, "gateway: GATEWAY_NATS_REPLICAS is 3, but the NATS cluster has 1 server") {
		t.Errorf("3 replicas on one server: exit %d, stderr %q", code, stderr)
	}

	code, stdout, stderr := runOnce(t, with(base, "GATEWAY_NATS_URL", cluster.URL(), "GATEWAY_EVENTS_STREAM", "RUN_REPLICAS"))
	if code != exitOK {
		t.Fatalf("auto replicas on a cluster of 3: exit %d\n%s\n%s", code, stdout, stderr)
	}
	nc, err := nats.Connect(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, name := range []string{"RUN_REPLICAS", "RUN_REPLICAS_QUARANTINE"} {
		s, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
	}
}
