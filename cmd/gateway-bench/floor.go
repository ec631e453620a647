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

// floorServerEnv makes this binary the floor's server process.
const floorServerEnv = "GATEWAY_BENCH_FLOOR_SERVER"

// Faces of the floor measurement.
const (
	faceFloorGRPC = "grpc-floor"
	faceFloorHTTP = "http-floor"
)

// floorBody is about the size of a top-up as JSON.
var floorBody = []byte(`{"id":"8d6c3d4a-0b8e-4f4c-9a39-0d3b0e3f3b11","created_at":"2026-12-01T00:00:00Z",` +
	`"account_group_id":"5f0c9a1e-7b1f-4b7e-8a43-4b1a3f7c2d90","cash_amount":"10.00","currency":"EUR","status":"PROCESSING"}`)

// serveFloor is the floor's server process: it prints its two addresses
// and serves until its standard input closes (the bench process ended).
func serveFloor() int {
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(grpcLis)
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(floorBody)
	})}
	go hs.Serve(httpLis)
	fmt.Printf("grpc %s\nhttp %s\n", grpcLis.Addr(), httpLis.Addr())
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// floorProcess is a running floor server.
type floorProcess struct {
	cmd                *exec.Cmd
	stdin              io.Closer
	grpcAddr, httpAddr string
}

func startFloor() (*floorProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), floorServerEnv+"=1")
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
	for f.grpcAddr == "" || f.httpAddr == "" {
		if !sc.Scan() {
			f.stop()
			return nil, fmt.Errorf("floor server: no addresses: %v", sc.Err())
		}
		switch name, addr, _ := strings.Cut(sc.Text(), " "); name {
		case "grpc":
			f.grpcAddr = addr
		case "http":
			f.httpAddr = addr
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

// runFloor measures both round trips at each concurrency.
func runFloor(ctx context.Context, s Settings, log io.Writer) ([]UnaryRow, error) {
	f, err := startFloor()
	if err != nil {
		return nil, err
	}
	defer f.stop()
	conn, err := grpc.NewClient("passthrough:///"+f.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	maxConns := 0
	for _, n := range s.Concurrency {
		maxConns = max(maxConns, n)
	}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns}}
	defer httpClient.CloseIdleConnections()
	url := "http://" + f.httpAddr + "/"
	calls := map[string]caller{
		faceFloorGRPC: func(ctx context.Context) error {
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		},
		faceFloorHTTP: func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		},
	}
	var rows []UnaryRow
	for _, n := range s.Concurrency {
		for _, face := range []string{faceFloorGRPC, faceFloorHTTP} {
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
