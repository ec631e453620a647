// Command upvest-sim serves the simulated Upvest Investment API
// (internal/upvestsim) on its own, so programs in any language can test
// against it: signed requests, OAuth2 tokens, idempotency, status
// transitions, webhooks and injected faults, plus the /_sim/ inspection and
// control endpoints.
//
//	upvest-sim --client-id ID --client-secret SECRET --tenant-public-key tenant.pub.pem
//
// It prints the address it listens on, logs every request with its verdict
// to stderr, and shuts down gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "upvest-sim:", err)
		var fe flagError
		if errors.As(err, &fe) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// flagError is a missing or bad flag: exit status 2, as flag parsing uses.
type flagError struct{ error }

func flagErrorf(format string, args ...any) error { return flagError{fmt.Errorf(format, args...)} }

// options are the command line.
type options struct {
	addr, clientID, clientSecret string
	tenantKeyFile, tenantKeyID   string
	webhookURL                   string
	latency, step, tokenTTL      time.Duration
	faultRate                    float64
	faultSeed                    int64
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("upvest-sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported as one line by main
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&o.clientID, "client-id", "", "tenant client id (required)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "tenant client secret (required)")
	fs.StringVar(&o.tenantKeyFile, "tenant-public-key", "", "PEM file of the public key the tenant signs with (required)")
	fs.StringVar(&o.tenantKeyID, "tenant-key-id", "tenant-key", "key id the tenant signs with")
	fs.StringVar(&o.webhookURL, "webhook-url", "", "pre-registered webhook subscription for all events (optional)")
	fs.DurationVar(&o.latency, "latency", 0, "latency added to every request")
	fs.Float64Var(&o.faultRate, "fault-rate", 0, "chance (0..1) of a random fault per request")
	fs.Int64Var(&o.faultSeed, "fault-seed", 0, "seed for faults and ids, for a repeatable run (0: random)")
	fs.DurationVar(&o.step, "step", 0, "move resources one status forward every step (0: only on POST /_sim/advance)")
	fs.DurationVar(&o.tokenTTL, "token-ttl", 1799*time.Second, "lifetime of access tokens")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
			return o, err
		}
		return o, flagError{err}
	}
	switch {
	case fs.NArg() > 0:
		return o, flagErrorf("unexpected argument %q", fs.Arg(0))
	case o.clientID == "":
		return o, flagErrorf("--client-id is required")
	case o.clientSecret == "":
		return o, flagErrorf("--client-secret is required")
	case o.tenantKeyFile == "":
		return o, flagErrorf("--tenant-public-key is required")
	case o.tenantKeyID == "":
		return o, flagErrorf("--tenant-key-id must not be empty")
	case o.faultRate < 0 || o.faultRate > 1:
		return o, flagErrorf("--fault-rate %v is outside 0..1", o.faultRate)
	case o.latency < 0:
		return o, flagErrorf("--latency must not be negative")
	case o.step < 0:
		return o, flagErrorf("--step must not be negative")
	case o.tokenTTL <= 0:
		return o, flagErrorf("--token-ttl must be positive")
	}
	if o.webhookURL != "" {
		if u, err := url.Parse(o.webhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return o, flagErrorf("--webhook-url %q is not an absolute http(s) URL", o.webhookURL)
		}
	}
	return o, nil
}

// run serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	pemBytes, err := os.ReadFile(o.tenantKeyFile)
	if err != nil {
		return flagErrorf("--tenant-public-key: %v", err)
	}
	pub, err := httpsig.ParsePublicKey(pemBytes)
	if err != nil {
		return flagErrorf("--tenant-public-key %s: %v", o.tenantKeyFile, err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	sim, err := upvestsim.New(upvestsim.Config{
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		TenantKeys:   map[string]crypto.PublicKey{o.tenantKeyID: pub},
		WebhookURL:   o.webhookURL,
		TokenTTL:     o.tokenTTL,
		Step:         o.step,
		Latency:      o.latency,
		FaultRate:    o.faultRate,
		FaultSeed:    o.faultSeed,
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	defer sim.Close()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return flagErrorf("--addr: %v", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "upvest-sim listening on http://%s\n", ln.Addr())
	logger.Info("upvest-sim started", "addr", ln.Addr().String(), "client_id", o.clientID, "tenant_key_id", o.tenantKeyID,
		"webhook_url", o.webhookURL, "webhook_key_id", sim.WebhookKeyID(), "fault_rate", o.faultRate, "step", o.step)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("upvest-sim shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	return nil
}
