package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/upvest-gateway/gateway/internal/loadtest"
	"github.com/upvest-gateway/gateway/internal/server"
)

// gatewayPackage is built when no -gateway binary is given.
const gatewayPackage = "github.com/upvest-gateway/gateway/cmd/gateway"

// buildGateway builds the gateway binary into dir.
func buildGateway(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "gateway")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, gatewayPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", gatewayPackage, err, out)
	}
	return bin, nil
}

// gatewayProcess is a running gateway.
type gatewayProcess struct {
	cmd                           *exec.Cmd
	grpcAddr, httpAddr, adminAddr string
	// coldStart is the time from starting the process to its first ready
	// answer (/readyz 200).
	coldStart time.Duration
	stderr    *tail
	exited    chan struct{}
	waitErr   error
}

// gatewayConfig is what a gateway process is started with.
type gatewayConfig struct {
	bin, dataDir     string
	simURL           string
	upstream         *upstreamTLS // nil: the simulator speaks plain HTTP
	tenant           *tenant
	keyName, keyFile string
	webhookID        string // the webhook_id deliveries carry
}

// env is the gateway's environment: the settings of a default
// deployment, but for the addresses (any free loopback port), the data
// directory, a quick shutdown and the tenant. Nothing of this process's
// environment goes in, so no OTEL_* setting turns tracing on.
func (c gatewayConfig) env() []string {
	env := []string{
		"UPVEST_BASE_URL=" + c.simURL,
		"UPVEST_CLIENT_ID=" + c.tenant.clientID,
		"UPVEST_CLIENT_SECRET=" + c.tenant.clientSecret,
		"UPVEST_SIGNING_KEY_FILE=" + c.keyFile,
		"UPVEST_SIGNING_KEY_ID=" + c.tenant.keyID(c.keyName),
		"GATEWAY_GRPC_ADDR=127.0.0.1:0",
		"GATEWAY_HTTP_ADDR=127.0.0.1:0",
		"GATEWAY_ADMIN_ADDR=127.0.0.1:0",
		"GATEWAY_DATA_DIR=" + c.dataDir,
		"GATEWAY_WEBHOOK_IDS=" + c.webhookID,
		"GATEWAY_SHUTDOWN_DELAY=0s",
		"GATEWAY_DRAIN_TIMEOUT=5s",
	}
	env = append(env, c.upstream.env()...)
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// startGateway starts the gateway and waits until it is ready.
func startGateway(ctx context.Context, c gatewayConfig) (*gatewayProcess, error) {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(c.bin)
	cmd.Env = c.env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	g := &gatewayProcess{cmd: cmd, stderr: &tail{max: 8 << 10}, exited: make(chan struct{})}
	cmd.Stderr = g.stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		g.waitErr = cmd.Wait()
		close(g.exited)
	}()
	addrs := make(chan error, 1)
	go func() { addrs <- g.readAddresses(stdout) }()
	fail := func(err error) (*gatewayProcess, error) {
		g.kill()
		return nil, fmt.Errorf("gateway: %w\n%s", err, g.stderr)
	}
	select {
	case err := <-addrs:
		if err != nil {
			return fail(err)
		}
	case <-g.exited:
		return fail(fmt.Errorf("exited at start-up: %v", g.waitErr))
	case <-time.After(time.Minute):
		return fail(errors.New("not listening after a minute"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + g.adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				g.coldStart = time.Since(start)
				return g, nil
			}
		}
		select {
		case <-g.exited:
			return fail(fmt.Errorf("exited at start-up: %v", g.waitErr))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Since(start) > time.Minute {
			return fail(errors.New("not ready after a minute"))
		}
	}
}

// readAddresses reads the listeners' addresses from the gateway's start-up
// lines, then drains its standard output.
func (g *gatewayProcess) readAddresses(stdout io.Reader) error {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "gateway: listening "); ok {
			for _, f := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(f, "grpc="); ok {
					g.grpcAddr = v
				} else if v, ok := strings.CutPrefix(f, "http="); ok {
					g.httpAddr = v
				}
			}
		}
		if rest, ok := strings.CutPrefix(line, "gateway: admin listening on "); ok {
			g.adminAddr, _, _ = strings.Cut(rest, " ")
		}
		if g.grpcAddr != "" && g.httpAddr != "" && g.adminAddr != "" {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return nil
		}
	}
	return errors.New("no listening addresses on standard output")
}

func (g *gatewayProcess) pid() int { return g.cmd.Process.Pid }

// cpu is the CPU time the gateway has used.
func (g *gatewayProcess) cpu() (time.Duration, error) { return loadtest.ProcessCPUOf(g.pid()) }

// rss is the gateway's resident memory.
func (g *gatewayProcess) rss() (uint64, error) { return loadtest.ProcessRSS(g.pid()) }

// memoryMetrics are the Go runtime's gauges the idle scenario breaks the
// gateway's memory down by, from its admin listener's /metrics.
var memoryMetrics = map[string]string{
	"go_memstats_stack_inuse_bytes": "goroutine stacks",
	"go_memstats_heap_inuse_bytes":  "heap in use",
	"go_goroutines":                 "goroutines",
}

// memory reads memoryMetrics; a part it cannot read is left out.
func (g *gatewayProcess) memory() map[string]uint64 {
	resp, err := http.Get("http://" + g.adminAddr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	parts := map[string]uint64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if part, known := memoryMetrics[name]; ok && known {
			if v, err := strconv.ParseFloat(value, 64); err == nil {
				parts[part] = uint64(v)
			}
		}
	}
	return parts
}

func (g *gatewayProcess) webhookURL() string { return "http://" + g.httpAddr + server.WebhookPath }

// stop shuts the gateway down as SIGTERM does, killing it if that takes
// over half a minute.
func (g *gatewayProcess) stop() error {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		g.kill()
		return fmt.Errorf("gateway: not stopped 30 s after SIGTERM\n%s", g.stderr)
	}
	if g.waitErr != nil {
		return fmt.Errorf("gateway: %v\n%s", g.waitErr, g.stderr)
	}
	return nil
}

func (g *gatewayProcess) kill() {
	_ = g.cmd.Process.Kill()
	<-g.exited
}

// profile saves the gateway's CPU profile over d (its admin listener's
// /debug/pprof/profile) to path.
func (g *gatewayProcess) profile(ctx context.Context, d time.Duration, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", g.adminAddr, max(1, int(d.Round(time.Second)/time.Second))), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CPU profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tail keeps the end of what is written to it: the gateway's log, for an
// error message, without keeping a line per call.
type tail struct {
	max int // bytes
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// String is the last whole lines kept.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
