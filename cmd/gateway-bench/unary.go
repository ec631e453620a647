package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/loadtest"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// UnaryRow is one measurement of the unary scenario.
type UnaryRow struct {
	Key         string `json:"key"`
	Face        string `json:"face"`
	Call        string `json:"call"`
	Concurrency int    `json:"concurrency"`
	Calls       int    `json:"calls"`
	Failed      int    `json:"failed"`
	// PerSecond is the calls answered per second.
	PerSecond float64             `json:"per_second"`
	P50       time.Duration       `json:"p50_ns"`
	P99       time.Duration       `json:"p99_ns"`
	Quantiles []loadtest.Quantile `json:"quantiles"`
	// GatewayCPU is the gateway process's CPU time per call (not for the
	// direct face, which has no gateway).
	GatewayCPU time.Duration `json:"gateway_cpu_per_call_ns,omitempty"`
	// CPUShares is where the gateway's CPU went, from its CPU profile
	// (-profile, at the profile concurrency only).
	CPUShares   CPUShares `json:"cpu_shares,omitempty"`
	CPUPressure float64   `json:"cpu_pressure_percent"`
	Errors      []string  `json:"errors,omitempty"`
}

// caller makes one kind of call through one face.
type caller func(ctx context.Context) error

// callers are the calls of each face for one key: the upstream client
// alone, the gateway over gRPC, and over REST.
type callers struct {
	direct, grpc, rest map[string]caller // by call
	close              func()
}

// newCallers prepares the calls: a top-up to read, made once, and a
// create of another top-up with a fresh request_id each time.
func newCallers(ctx context.Context, direct *upstream.Client, gw *gatewayProcess, maxConcurrency int) (*callers, error) {
	accountGroup := uuid.NewString()
	created, err := direct.CreateTopup(ctx, upstream.CreateTopupRequest{AccountGroupID: accountGroup, CashAmount: "10.00", Currency: "EUR"},
		upstream.WithIdempotencyKey(uuid.NewString()))
	if err != nil {
		return nil, fmt.Errorf("the top-up to read: %w", err)
	}
	conn, err := grpc.NewClient("passthrough:///"+gw.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	topups := gatewayv1.NewTopupServiceClient(conn)
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: loopbackTransport(maxConcurrency, nil)}
	base := "http://" + gw.httpAddr
	rest := func(ctx context.Context, method, path, body string) error {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %s: %.200s", method, path, resp.Status, b)
		}
		return nil
	}
	topupID := created.ID
	newBody := func() upstream.CreateTopupRequest {
		return upstream.CreateTopupRequest{AccountGroupID: accountGroup, CashAmount: "10.00", Currency: "EUR"}
	}
	return &callers{
		direct: map[string]caller{
			callRead: func(ctx context.Context) error {
				_, err := direct.GetTopup(ctx, topupID)
				return err
			},
			callCreate: func(ctx context.Context) error {
				_, err := direct.CreateTopup(ctx, newBody(), upstream.WithIdempotencyKey(uuid.NewString()))
				return err
			},
		},
		grpc: map[string]caller{
			callRead: func(ctx context.Context) error {
				_, err := topups.GetTopup(ctx, &gatewayv1.GetTopupRequest{TopupId: topupID})
				return err
			},
			callCreate: func(ctx context.Context) error {
				_, err := topups.CreateTopup(ctx, &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(),
					AccountGroupId: accountGroup, CashAmount: "10.00", Currency: "EUR"})
				return err
			},
		},
		rest: map[string]caller{
			callRead: func(ctx context.Context) error {
				return rest(ctx, http.MethodGet, "/v1/payments/topups/"+topupID, "")
			},
			callCreate: func(ctx context.Context) error {
				return rest(ctx, http.MethodPost, "/v1/payments/topups",
					`{"request_id":"`+uuid.NewString()+`","account_group_id":"`+accountGroup+`","cash_amount":"10.00","currency":"EUR"}`)
			},
		},
		close: func() {
			conn.Close()
			httpClient.CloseIdleConnections()
		},
	}, nil
}

func (c *callers) of(face string) map[string]caller {
	switch face {
	case faceDirect:
		return c.direct
	case faceGRPC:
		return c.grpc
	}
	return c.rest
}

// runUnary measures every call, concurrency and face with one key, the
// faces in turn at each step so that the machine's load weighs on them
// alike.
func runUnary(ctx context.Context, s Settings, keyName string, direct *upstream.Client, gw *gatewayProcess, log io.Writer) ([]UnaryRow, error) {
	cs, err := newCallers(ctx, direct, gw, slices.Max(s.Concurrency))
	if err != nil {
		return nil, err
	}
	defer cs.close()
	var rows []UnaryRow
	for _, call := range s.Calls {
		for _, n := range s.Concurrency {
			for _, face := range s.Faces {
				cfg := loadtest.UnaryConfig{Call: cs.of(face)[call], Concurrency: n, Warmup: s.Warmup, Duration: s.Duration}
				if face != faceDirect {
					cfg.CPU = gw.cpu
				}
				res, err := loadtest.Unary(ctx, cfg)
				if err != nil {
					return nil, err
				}
				row := UnaryRow{Key: keyName, Face: face, Call: call, Concurrency: n, Calls: res.Calls, Failed: res.Failed,
					PerSecond: res.PerSecond, P50: res.Latency.P50, P99: res.Latency.P99, Quantiles: res.Quantiles,
					GatewayCPU: res.CPUPerCall, CPUPressure: res.CPUPressure, Errors: res.Errors}
				fmt.Fprintf(log, "unary %-7s %-6s %-6s %v\n", keyName, face, call, res)
				if res.Failed > 0 || res.Calls == 0 {
					return nil, fmt.Errorf("unary %s %s %s at concurrency %d: %d calls, %d failed: %v", keyName, face, call, n,
						res.Calls, res.Failed, res.Errors)
				}
				if s.Profile && n == s.ProfileConcurrency && face != faceDirect {
					if row.CPUShares, err = profileUnary(ctx, s, cfg, gw, fmt.Sprintf("%s-%s-%s-c%d", keyName, face, call, n)); err != nil {
						return nil, err
					}
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

// profileUnary runs a measurement again while the gateway's CPU profile
// is taken, so that profiling weighs on no number reported.
func profileUnary(ctx context.Context, s Settings, cfg loadtest.UnaryConfig, gw *gatewayProcess, name string) (CPUShares, error) {
	path := filepath.Join(s.Out, "profiles", name+".pb.gz")
	cfg.CPU = nil
	cfg.Duration += time.Second // the profile's seconds, rounded, fit in
	errc := make(chan error, 1)
	go func() {
		time.Sleep(cfg.Warmup)
		errc <- gw.profile(ctx, cfg.Duration-time.Second, path)
	}()
	if _, err := loadtest.Unary(ctx, cfg); err != nil {
		return nil, err
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	return profileShares(path)
}
