//go:build chaos

package chaos_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// bins are the gateway and simulator binaries, built once by TestMain; with
// -race the processes are built with the race detector too, so a data race
// in the gateway under chaos fails the suite.
var bins struct{ gateway, sim string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.gateway, bins.sim = filepath.Join(dir, "gateway"), filepath.Join(dir, "upvest-sim")
	for bin, pkg := range map[string]string{
		bins.gateway: "github.com/upvest-gateway/gateway/cmd/gateway",
		bins.sim:     "github.com/upvest-gateway/gateway/cmd/upvest-sim",
	} {
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, pkg)...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Settings of the processes.
const (
	faultRate = "0.2"
	// simStep moves every simulated resource one status forward: a cancel
	// soon after its create mostly succeeds, a later one mostly finds the
	// resource moved on, and some race the step.
	simStep = "1s"
	// simLatency holds every request a moment, so that concurrent callers
	// of one request_id overlap.
	simLatency = "5ms"
)

// cluster is a simulator and two gateway replicas sharing one NATS.
type cluster struct {
	simURL   string
	sim      *process
	gateways [2]*process
	replicas [2]replica
}

// replica is a gRPC client of one gateway process.
type replica struct {
	topups      gatewayv1.TopupServiceClient
	payments    gatewayv1.PaymentsServiceClient
	virtualCash gatewayv1.VirtualCashServiceClient
}

// startCluster starts the simulator with random faults and two gateways
// on the NATS of GATEWAY_NATS_URL (with a stream and bucket of their own,
// deleted at the end) or on one in the test process. Every process is
// stopped when the test ends; one that crashed, or reported a data race,
// fails the test.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	dir, logs := t.TempDir(), t.TempDir()
	if *logsFlag != "" {
		logs = filepath.Join(*logsFlag, t.Name())
		if err := os.MkdirAll(logs, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	natsURL := os.Getenv("GATEWAY_NATS_URL")
	sfx := strings.ToUpper(strings.ReplaceAll(uuid.NewString()[:8], "-", ""))
	stream, bucket, statusBucket := "CHAOS_EVENTS_"+sfx, "CHAOS_IDEMPOTENCY_"+sfx, "CHAOS_STATUS_"+sfx
	if natsURL == "" {
		natsURL = eventstest.StartNATS(t)
	} else {
		// Registered before the gateways start, so run after they stop.
		t.Cleanup(func() {
			quarantine, _ := events.QuarantineNames(events.LogConfig{Stream: stream})
			servertest.DeleteStream(t, natsURL, stream)
			servertest.DeleteStream(t, natsURL, quarantine)
			servertest.DeleteStream(t, natsURL, "KV_"+bucket)
			servertest.DeleteStream(t, natsURL, "KV_"+statusBucket)
		})
	}
	t.Logf("NATS %s, stream %s, buckets %s and %s", natsURL, stream, bucket, statusBucket)

	_, keyFile, pubFile := simtest.WriteKey(t, dir)
	clientID, secret := uuid.NewString(), uuid.NewString()
	grpcAddrs := [2]string{freeAddr(t), freeAddr(t)}
	httpAddrs := [2]string{freeAddr(t), freeAddr(t)}

	c := &cluster{}
	c.sim = newProcess(t, "upvest-sim", filepath.Join(logs, "upvest-sim.log"), regexp.MustCompile(`listening on (http://\S+)`), bins.sim,
		[]string{"--addr", "127.0.0.1:0", "--client-id", clientID, "--client-secret", secret, "--tenant-public-key", pubFile,
			"--fault-rate", faultRate, "--step", simStep, "--latency", simLatency, "--webhook-url", "http://" + httpAddrs[0] + "/webhooks/upvest"}, nil)
	c.simURL = c.sim.start(t)[1]

	for i := range c.gateways {
		env := []string{
			"UPVEST_BASE_URL=" + c.simURL, "UPVEST_CLIENT_ID=" + clientID, "UPVEST_CLIENT_SECRET=" + secret,
			"UPVEST_SIGNING_KEY_FILE=" + keyFile, "UPVEST_SIGNING_KEY_ID=tenant-key",
			"GATEWAY_GRPC_ADDR=" + grpcAddrs[i], "GATEWAY_HTTP_ADDR=" + httpAddrs[i], "GATEWAY_ADMIN_ADDR=127.0.0.1:0",
			// Shorter than the default: a replica stopped is not in a load
			// balancer's rotation here.
			"GATEWAY_SHUTDOWN_DELAY=1s",
			"GATEWAY_DATA_DIR=" + filepath.Join(dir, fmt.Sprintf("gateway%d", i+1)),
			"GATEWAY_NATS_URL=" + natsURL, "GATEWAY_EVENTS_STREAM=" + stream, "GATEWAY_EVENTS_SUBJECT=chaos" + sfx + ".events",
			"GATEWAY_IDEMPOTENCY_BUCKET=" + bucket, "GATEWAY_STATUS_BUCKET=" + statusBucket,
			// The default, spelled out: the contract holds for callers that
			// send a request_id, and the suite's always do.
			"GATEWAY_ALLOW_MISSING_REQUEST_ID=false",
		}
		c.gateways[i] = newProcess(t, fmt.Sprintf("gateway %d", i+1), filepath.Join(logs, fmt.Sprintf("gateway%d.log", i+1)),
			regexp.MustCompile(`^gateway: listening grpc=(\S+) http=(\S+)$`), bins.gateway, nil, env)
		c.gateways[i].start(t)
		c.replicas[i] = dial(t, grpcAddrs[i])
	}
	return c
}

// dial connects to a gateway. A replica killed and restarted is found
// again within half a second, rather than after gRPC's default backoff of
// up to two minutes.
func dial(t *testing.T, addr string) replica {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return replica{
		topups:      gatewayv1.NewTopupServiceClient(conn),
		payments:    gatewayv1.NewPaymentsServiceClient(conn),
		virtualCash: gatewayv1.NewVirtualCashServiceClient(conn),
	}
}

// ledger reads the simulator's ledger: every resource with the key that
// created it, and the balances, at one instant.
func (c *cluster) ledger(t *testing.T) upvestsim.Ledger {
	t.Helper()
	var l upvestsim.Ledger
	c.control(t, "ledger", &l)
	return l
}

// control GETs one of the simulator's /_sim/ endpoints into v.
func (c *cluster) control(t *testing.T, name string, v any) {
	t.Helper()
	res, err := http.Get(c.simURL + "/_sim/" + name)
	if err != nil {
		t.Fatalf("/_sim/%s: %v", name, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("/_sim/%s: %d %s", name, res.StatusCode, b)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("/_sim/%s: %v", name, err)
	}
}

// freeAddr is a loopback address nothing listens on, for a process that
// must keep its address across restarts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is a program the suite runs, kills and restarts. Every run's
// stderr goes to one log file, shown in part when the test fails.
type process struct {
	name, bin string
	args, env []string
	ready     *regexp.Regexp
	logPath   string
	log       *os.File

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current run has ended
	exitErr error         // of the current run, once it has ended
	killed  bool          // the current run's end is the suite's doing
	crashes []string      // runs that ended by themselves
}

func newProcess(t *testing.T, name, logPath string, ready *regexp.Regexp, bin string, args, env []string) *process {
	t.Helper()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, bin: bin, args: args, env: env, ready: ready, logPath: logPath, log: log}
	t.Cleanup(func() {
		p.stop(t)
		log.Close()
		p.check(t)
	})
	return p
}

// start runs the program and waits for the stdout line that says it is
// ready, returning that line's submatches.
func (p *process) start(t *testing.T) []string {
	t.Helper()
	m, err := p.run()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run is start for any goroutine: it returns what went wrong.
func (p *process) run() ([]string, error) {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, p.env...)
	cmd.Stderr = p.log
	cmd.SysProcAttr = dieWithParent()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.killed = cmd, exited, false
	p.mu.Unlock()

	found := make(chan []string, 1)
	go func() {
		defer close(exited)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if m := p.ready.FindStringSubmatch(lines.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		if !p.killed {
			p.crashes = append(p.crashes, fmt.Sprint(err))
		}
		p.mu.Unlock()
	}()
	select {
	case m := <-found:
		return m, nil
	case <-exited:
		return nil, fmt.Errorf("%s exited before it was ready:\n%s", p.name, p.tail())
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, fmt.Errorf("%s did not get ready:\n%s", p.name, p.tail())
	}
}

// kill ends the current run with SIGKILL, as a node failure or the OOM
// killer would: no shutdown, no draining.
func (p *process) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// stop ends the current run gracefully, or kills it after 25 s.
func (p *process) stop(t *testing.T) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		p.mu.Lock()
		err := p.exitErr
		p.mu.Unlock()
		if err != nil {
			t.Errorf("%s ended with %v after SIGTERM", p.name, err)
		}
	case <-time.After(25 * time.Second):
		p.kill()
		t.Errorf("%s did not exit within 25 s of SIGTERM", p.name)
	}
}

// check fails the test for a run that ended by itself or a data race the
// race detector reported; if the test failed, it shows the log's end.
func (p *process) check(t *testing.T) {
	p.mu.Lock()
	crashes := p.crashes
	p.mu.Unlock()
	for _, c := range crashes {
		t.Errorf("%s exited by itself: %s", p.name, c)
	}
	log, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Errorf("%s: %v", p.name, err)
		return
	}
	if i := bytes.Index(log, []byte("WARNING: DATA RACE")); i >= 0 {
		t.Errorf("%s reported a data race:\n%s", p.name, log[i:min(len(log), i+8000)])
	}
	if t.Failed() {
		t.Logf("%s log (end):\n%s", p.name, p.tail())
	}
}

// tail is the end of the log: enough to see why a process failed.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.logPath)
	const keep = 6000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}
