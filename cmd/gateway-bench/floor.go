package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/upvest-gateway/gateway/internal/loadtest"
)

// The transport floor: what one round trip costs on this machine with
// nothing behind it, a bare grpc-go unary call (the health check) and a
// bare net/http request answered with a top-up's worth of JSON, each to a
// process of its own on loopback. A gateway's gRPC call is one of the
// first and one signed upstream request (the direct face); the latency it
// adds over the direct face can therefore not be below the first. The
// targets' table states both, so that the gateway's own share is read off.
//
// The others are bare proxies: a gRPC call, and an HTTP/1.1 request, whose
// handler makes one net/http GET to a bare server in the bench process and
// answers when the body is in. Each is a face of a gateway without a
// gateway's work (no signing, no JSON, no interceptors): its CPU per call
// is the least that face's call can cost besides signing, which caps the
// signing share the P-521 targets read.

// floorServerEnv makes this binary the floor's server process.
const floorServerEnv = "GATEWAY_BENCH_FLOOR_SERVER"

// Faces of the floor measurement.
const (
	faceFloorGRPC      = "grpc-floor"
	faceFloorHTTP      = "http-floor"
	faceFloorProxy     = "proxy-floor"      // gRPC in, HTTP out
	faceFloorHTTPProxy = "http-proxy-floor" // HTTP in, HTTP out
)

// floorUpstreamEnv is the URL of the bare proxies' upstream, a server in
// the bench process (over TLS with -upstream-tls, as the simulator).
const floorUpstreamEnv = "GATEWAY_BENCH_FLOOR_UPSTREAM"

// floorBody is about the size of a top-up as JSON.
var floorBody = []byte(`{"id":"8d6c3d4a-0b8e-4f4c-9a39-0d3b0e3f3b11","created_at":"2026-12-01T00:00:00Z",` +
	`"account_group_id":"5f0c9a1e-7b1f-4b7e-8a43-4b1a3f7c2d90","cash_amount":"10.00","currency":"EUR","status":"PROCESSING"}`)

// answerFloorBody is the bare HTTP server's handler.
func answerFloorBody(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(floorBody)
}

// serveFloor is the floor's server process: it prints its addresses and
// serves until its standard input closes (the bench process ended).
func serveFloor() int {
	var lis [4]net.Listener
	for i := range lis {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		lis[i] = l
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(lis[0])
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(answerFloorBody)}
	go hs.Serve(lis[1])
	proxy := &bareProxy{url: os.Getenv(floorUpstreamEnv) + "/", client: &http.Client{Timeout: 30 * time.Second, Transport: loopbackTransport(256, nil)}}
	ps := grpc.NewServer()
	healthpb.RegisterHealthServer(ps, proxy)
	go ps.Serve(lis[2])
	hps := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: proxy}
	go hps.Serve(lis[3])
	fmt.Printf("grpc %s\nhttp %s\nproxy %s\nhttp-proxy %s\n", lis[0].Addr(), lis[1].Addr(), lis[2].Addr(), lis[3].Addr())
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// bareProxy answers a health check, or an HTTP request, with one GET
// upstream: the bare proxy.
type bareProxy struct {
	healthpb.UnimplementedHealthServer
	url    string
	client *http.Client
}

func (p *bareProxy) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if err := get(ctx, p.client, p.url); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (p *bareProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := get(r.Context(), p.client, p.url); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answerFloorBody(w, r)
}

// get makes one GET and reads its body.
func get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// floorProcess is a running floor server.
type floorProcess struct {
	cmd                                          *exec.Cmd
	stdin                                        io.Closer
	grpcAddr, httpAddr, proxyAddr, httpProxyAddr string
}

// startFloor starts the floor's process, its bare proxies' upstream at
// upstreamURL.
func startFloor(upstreamURL string, up *upstreamTLS) (*floorProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), floorServerEnv+"=1", floorUpstreamEnv+"="+upstreamURL)
	cmd.Env = append(cmd.Env, up.env()...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &floorProcess{cmd: cmd, stdin: stdin}
	sc := bufio.NewScanner(stdout)
	for f.grpcAddr == "" || f.httpAddr == "" || f.proxyAddr == "" || f.httpProxyAddr == "" {
		if !sc.Scan() {
			f.stop()
			return nil, fmt.Errorf("floor server: no addresses: %v", sc.Err())
		}
		switch name, addr, _ := strings.Cut(sc.Text(), " "); name {
		case "grpc":
			f.grpcAddr = addr
		case "http":
			f.httpAddr = addr
		case "proxy":
			f.proxyAddr = addr
		case "http-proxy":
			f.httpProxyAddr = addr
		}
	}
	return f, nil
}

func (f *floorProcess) cpu() (time.Duration, error) { return loadtest.ProcessCPUOf(f.cmd.Process.Pid) }

func (f *floorProcess) stop() {
	f.stdin.Close()
	done := make(chan struct{})
	go func() { f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-done
	}
}

// floorFaces are the floor's round trips, in the order measured and shown.
var floorFaces = []string{faceFloorGRPC, faceFloorHTTP, faceFloorProxy, faceFloorHTTPProxy}

// runFloor measures the three round trips at each concurrency.
func runFloor(ctx context.Context, s Settings, up *upstreamTLS, log io.Writer) ([]UnaryRow, error) {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	us := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(answerFloorBody)}
	upstreamURL := up.serve(us, upstream)
	defer us.Close()
	f, err := startFloor(upstreamURL, up)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	health := func(addr string) (healthpb.HealthClient, func() error, error) {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, err
		}
		return healthpb.NewHealthClient(conn), conn.Close, nil
	}
	hc, closeHC, err := health(f.grpcAddr)
	if err != nil {
		return nil, err
	}
	defer closeHC()
	proxy, closeProxy, err := health(f.proxyAddr)
	if err != nil {
		return nil, err
	}
	defer closeProxy()
	maxConns := 0
	for _, n := range s.Concurrency {
		maxConns = max(maxConns, n)
	}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: loopbackTransport(maxConns, nil)}
	defer httpClient.CloseIdleConnections()
	url := "http://" + f.httpAddr + "/"
	calls := map[string]caller{
		faceFloorGRPC: func(ctx context.Context) error {
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
		faceFloorHTTP:      func(ctx context.Context) error { return get(ctx, httpClient, url) },
		faceFloorHTTPProxy: func(ctx context.Context) error { return get(ctx, httpClient, "http://"+f.httpProxyAddr+"/") },
		faceFloorProxy: func(ctx context.Context) error {
			_, err := proxy.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
	}
	var rows []UnaryRow
	for _, n := range s.Concurrency {
		for _, face := range floorFaces {
			res, err := loadtest.Unary(ctx, loadtest.UnaryConfig{Call: calls[face], Concurrency: n, Warmup: s.Warmup, Duration: s.Duration, CPU: f.cpu})
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "floor %-10s %v\n", face, res)
			if res.Failed > 0 || res.Calls == 0 {
				return nil, fmt.Errorf("floor %s at concurrency %d: %d calls, %d failed: %v", face, n, res.Calls, res.Failed, res.Errors)
			}
			rows = append(rows, UnaryRow{Face: face, Call: "round trip", Concurrency: n, Calls: res.Calls, PerSecond: res.PerSecond,
				P50: res.Latency.P50, P99: res.Latency.P99, Quantiles: res.Quantiles, GatewayCPU: res.CPUPerCall, CPUPressure: res.CPUPressure})
		}
	}
	return rows, nil
}
