package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/idempotency"
	"github.com/upvest-gateway/gateway/internal/metrics"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/statusindex"
	"github.com/upvest-gateway/gateway/internal/tracing"
	"github.com/upvest-gateway/gateway/internal/upstream"
	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// version is the gateway's version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// imageUID is the numeric user the container image (deploy/Dockerfile)
// runs as, and the Kubernetes manifests' runAsUser: a test keeps them equal.
const imageUID = 65532

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the gateway failed while running
	exitConfig  = 2 // a missing or bad setting, as flag parsing uses
)

// run is the whole program; main only supplies the process's arguments,
// environment and output.
func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "events":
			return runEvents(ctx, args[1:], env, os.Stdin, stdout, stderr)
		case "webhooks":
			return runWebhooks(ctx, args[1:], env, stdout, stderr)
		case "healthcheck":
			return runHealthcheck(ctx, args[1:], env, stdout, stderr)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return a == "--version" || a == "-version" }) {
		fmt.Fprintf(stdout, "gateway %s (%s, %s)\n", version, revision(), runtime.Version())
		return exitOK
	}
	cfg, err := ParseConfig(env, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return exitOK
	}
	// Every line in the chosen format, a fatal one included: of a bad
	// format or level, the default.
	lc, lerr := cfg.Logging()
	if lerr != nil {
		lc, _ = Config{LogLevel: "info", Simulate: cfg.Simulate}.Logging()
	}
	logger := newLogger(stderr, lc, readSecretFiles(&cfg)...)
	if err != nil {
		return failStart(logger, err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second signal is not caught: it ends the process at once, should
	// an operator not want to wait for the drain.
	context.AfterFunc(ctx, stop)
	life, _ := cfg.Lifecycle() // checked by ParseConfig

	listeners, err := listen(cfg)
	if err != nil {
		return failStart(logger, err)
	}
	grpcLis, httpLis, webhookLis, adminLis := listeners.grpc, listeners.http, listeners.webhook, listeners.admin
	closeListeners := listeners.close

	// The simulator of --simulate delivers its webhooks to this very
	// gateway, so events stream end to end.
	receiverAddr := httpLis.Addr()
	if webhookLis != nil {
		receiverAddr = webhookLis.Addr()
	}
	tr, err := tracing.New(ctx, cfg.Tracing, version)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			logger.Warn("tracing: spans not exported at shutdown", "err", err)
		}
	}()
	m := metrics.New(version)
	up, err := newUpstream(cfg, logger, stdout, webhookURL(receiverAddr), upstream.WithMetrics(m), upstream.WithTracing(tr.Provider, tr.Propagator))
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	defer up.stop()
	recvOpts, subs, err := receiverOptions(cfg, up)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	// Before the receiver starts, so that it starts bound to the
	// registered subscription.
	stopRegistration, err := startRegistration(ctx, cfg, up, subs, logger)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	defer stopRegistration()

	b, log, quarantine, err := openEventLog(ctx, cfg, logger)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	// Closed after Serve has returned, in this order: the drain is over,
	// so every call in flight has recorded its outcome in the idempotency
	// store, every delivery was answered, and the streams were ended; then
	// the embedded NATS server stops.
	defer func() {
		b.Close()
		logger.Info("event log closed", "embedded_nats", b.Embedded())
	}()
	defer log.Close()

	store, err := openIdempotency(ctx, cfg, b, log.Config().Replicas, logger)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	security, err := loadSecurity(ctx, cfg, logger)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	statuses, stopTail, err := openStatusIndex(ctx, cfg, b, log, logger)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	defer stopTail()
	serviceOpts, _ := cfg.ServiceOptions() // checked by ParseConfig
	serviceOpts = append(serviceOpts, service.WithIdempotencyStore(store), service.WithStatusIndex(statuses))
	limits, _ := cfg.Limits()
	cors, _ := cfg.CORS() // checked by ParseConfig
	security = append(security, server.WithCORS(cors))
	srv, err := server.New(server.Config{Upstream: up.client, GRPCListener: grpcLis, HTTPListener: httpLis, WebhookListener: webhookLis, AdminListener: adminLis},
		append(security, server.WithLogger(logger), server.WithShutdownDelay(life.ShutdownDelay), server.WithShutdownTimeout(life.DrainTimeout),
			server.WithMetrics(m), server.WithTracing(tr.Provider, tr.Propagator),
			server.WithEvents(log, recvOpts...), server.WithQuarantine(quarantine),
			server.WithServiceOptions(serviceOpts...), server.WithLimits(limits))...)
	if err != nil {
		closeListeners()
		return failStart(logger, err)
	}
	logger.Info("starting", "version", version, "config", cfg)
	if a := srv.AdminAddr(); a != "" {
		if host, _, _ := net.SplitHostPort(a); !isLoopback(host) {
			logger.Warn("the admin listener (metrics, profiles) is reachable beyond this host, and checks no caller: keep it off untrusted networks", "admin", a)
		}
	}
	if a := srv.WebhookAddr(); a != "" {
		fmt.Fprintf(stdout, "gateway: listening grpc=%s http=%s webhook=%s\n", srv.GRPCAddr(), srv.HTTPAddr(), a)
	} else {
		fmt.Fprintf(stdout, "gateway: listening grpc=%s http=%s\n", srv.GRPCAddr(), srv.HTTPAddr())
	}
	if a := srv.AdminAddr(); a != "" {
		fmt.Fprintf(stdout, "gateway: admin listening on %s (/metrics, /debug/pprof/, /healthz, /readyz)\n", a)
	}
	if cfg.Simulate {
		printExamples(stdout, srv.GRPCAddr(), srv.HTTPAddr())
	}
	if err := srv.Serve(ctx); err != nil {
		logger.Error("gateway: "+err.Error(), "exit_code", exitFailure)
		return exitFailure
	}
	return exitOK
}

// listeners are the gateway's open listeners; webhook and admin may be nil.
type listeners struct {
	grpc, http, webhook, admin net.Listener
}

func (l listeners) close() {
	for _, lis := range []net.Listener{l.grpc, l.http, l.webhook, l.admin} {
		if lis != nil {
			lis.Close()
		}
	}
}

// listen opens the configured listeners, or none: an address that cannot
// be listened on is a configuration error naming its setting.
func listen(cfg Config) (listeners, error) {
	var l listeners
	for _, a := range []struct {
		env, addr string
		lis       *net.Listener
	}{
		{"GATEWAY_GRPC_ADDR", cfg.GRPCAddr, &l.grpc},
		{"GATEWAY_HTTP_ADDR", cfg.HTTPAddr, &l.http},
		{"GATEWAY_WEBHOOK_ADDR", cfg.WebhookAddr, &l.webhook},
		{"GATEWAY_ADMIN_ADDR", cfg.AdminAddr, &l.admin},
	} {
		if a.addr == "" || a.env == "GATEWAY_ADMIN_ADDR" && a.addr == AdminOff {
			continue
		}
		lis, err := net.Listen("tcp", a.addr)
		if err != nil {
			l.close()
			return listeners{}, configErr(a.env, "%q: cannot listen: %v", a.addr, errors.Unwrap(err))
		}
		*a.lis = lis
	}
	return l, nil
}

// fail prints err as the one line an operator reads (of a command), and
// picks the exit code.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "gateway: %v\n", err)
	var ce *ConfigError
	if errors.As(err, &ce) {
		return exitConfig
	}
	return exitFailure
}

// failStart logs why the gateway cannot start as the one line an operator
// reads, in the log's format, and picks the exit code.
func failStart(logger *slog.Logger, err error) int {
	code := exitFailure
	var attrs []any
	var ce *ConfigError
	if errors.As(err, &ce) {
		code = exitConfig
		if ce.Env != "" {
			attrs = append(attrs, "setting", ce.Env)
		}
	}
	logger.Error("gateway: "+err.Error(), append(attrs, "exit_code", code)...)
	return code
}

// revision is the VCS revision the binary was built from, if known.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown revision"
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: gateway [flags]
       gateway --version
       gateway events quarantine list|show|reinject ...   (gateway events -h)
       gateway webhooks list|register|delete ...          (gateway webhooks -h)
       gateway healthcheck [--addr ADDR]                  (gateway healthcheck -h)

Serves the Upvest gRPC gateway. Every setting is an environment variable
(in brackets) or the flag of the same meaning; a flag wins over its variable.

`)
	newFlagSet(&Config{}, w).PrintDefaults()
}

// openTimeout bounds connecting to NATS (or starting the embedded server)
// and creating the stream.
const openTimeout = 30 * time.Second

// openEventLog opens the broker (the embedded NATS server under
// GATEWAY_DATA_DIR, or GATEWAY_NATS_URL), the event log on it and the log's
// quarantine. A failure is not a configuration error (exit 1): NATS may just
// not be up yet, and the orchestrator restarts the gateway.
func openEventLog(ctx context.Context, cfg Config, logger *slog.Logger) (*broker.Broker, *events.Log, *events.Quarantine, error) {
	bc, err := cfg.BrokerConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	lc, err := cfg.LogConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	opts, err := cfg.LogOptions()
	if err != nil {
		return nil, nil, nil, err
	}
	// Start-up runs to its end even if a signal comes meanwhile; Serve then
	// stops at once.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), openTimeout)
	defer cancel()
	b, err := broker.Open(ctx, bc, broker.WithLogger(logger))
	if errors.Is(err, broker.ErrDataDir) {
		return nil, nil, nil, configErr("GATEWAY_DATA_DIR", "%s (the container image runs as uid %d: the volume must be writable by it)",
			strings.TrimPrefix(err.Error(), broker.ErrDataDir.Error()+": "), imageUID)
	}
	if err != nil {
		// The library's errors never quote the NATS URL (it may hold credentials).
		return nil, nil, nil, fmt.Errorf("event log: %w", err)
	}
	if lc.Replicas, err = streamReplicas(b, lc.Replicas, logger); err != nil {
		b.Close()
		return nil, nil, nil, err
	}
	log, err := events.Open(ctx, b, lc, append(opts, events.WithLogger(logger))...)
	if err != nil {
		b.Close()
		return nil, nil, nil, fmt.Errorf("event log: %w", err)
	}
	q, err := events.OpenQuarantine(ctx, b, lc, events.WithLogger(logger))
	if err != nil {
		log.Close()
		b.Close()
		return nil, nil, nil, fmt.Errorf("event log: %w", err)
	}
	return b, log, q, nil
}

// streamReplicas settles GATEWAY_NATS_REPLICAS (0: auto) on the cluster b
// is connected to, refusing more replicas than it has servers, and says
// what a single replica on an external NATS risks.
func streamReplicas(b *broker.Broker, requested int, logger *slog.Logger) (int, error) {
	n, err := b.Replicas(requested)
	if err != nil {
		return 0, configErr("GATEWAY_NATS_REPLICAS", "is %d, but the NATS cluster has %d server(s): an acknowledged event would not be on %d servers; refusing to start",
			requested, b.Servers(), requested)
	}
	logger.Info("events: stream replicas", "replicas", n, "auto", requested == 0, "nats_servers", b.Servers(), "embedded", b.Embedded())
	if n == 1 && !b.Embedded() {
		logger.Warn("events: the event streams have one replica: an acknowledged event is lost with that NATS server's storage, " +
			"and webhooks are answered 503 while it is down; run a NATS cluster of 3 servers (GATEWAY_NATS_REPLICAS=auto then uses 3)")
	}
	return n, nil
}

// openStatusIndex opens the status index on b and starts recording the
// event log's statuses into it; the returned func stops that.
func openStatusIndex(ctx context.Context, cfg Config, b *broker.Broker, log *events.Log, logger *slog.Logger) (*statusindex.Index, func(), error) {
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), openTimeout)
	defer cancel()
	// As many replicas as the event log: the index is only as durable as
	// what it is fed from.
	ix, err := statusindex.Open(octx, b, statusindex.Config{Bucket: cfg.StatusBucket, Replicas: log.Config().Replicas}, statusindex.WithLogger(logger))
	if err != nil {
		return nil, nil, fmt.Errorf("status index: %w", err)
	}
	tailCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		lc := log.Config()
		// A NATS outage at start-up: keep trying, the index is best-effort.
		for tailCtx.Err() == nil {
			if err := ix.Tail(tailCtx, b.JetStream(), lc.Stream, lc.Subject); err != nil && tailCtx.Err() == nil {
				logger.Warn("status index: cannot tail the event log; retrying", "err", err)
				select {
				case <-time.After(5 * time.Second):
				case <-tailCtx.Done():
				}
			}
		}
	}()
	return ix, func() { stop(); <-done }, nil
}

// openIdempotency opens the idempotency store on b, with the event log's
// replicas as settled on the cluster.
func openIdempotency(ctx context.Context, cfg Config, b *broker.Broker, replicas int, logger *slog.Logger) (*idempotency.Store, error) {
	ic, err := cfg.IdempotencyConfig()
	if err != nil {
		return nil, err
	}
	ic.Replicas = replicas
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), openTimeout)
	defer cancel()
	store, err := idempotency.Open(ctx, b.JetStream(), ic, idempotency.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("idempotency store: %w", err)
	}
	return store, nil
}

// webhookURL is where a simulator in this process delivers webhooks: the
// HTTP listener, on loopback when it listens on every interface.
func webhookURL(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + server.WebhookPath
}

// upvest is the Upvest the gateway talks to: its client, the tenant's
// configuration (for clients of other scopes), the webhook subscription of
// the in-process simulator ("" for Upvest itself), and how to stop what
// newUpstream started.
type upvest struct {
	client    *upstream.Client
	cfg       upstream.Config
	clientID  string
	webhookID string
	stop      func()
}

// newUpstream makes the Upvest client: against Upvest as configured, or
// against an in-process simulator with --simulate, which delivers its
// webhooks to webhookURL.
func newUpstream(cfg Config, logger *slog.Logger, stdout io.Writer, webhookURL string, observe ...upstream.Option) (*upvest, error) {
	up := &upvest{stop: func() {}}
	if cfg.Simulate {
		sim, err := startSimulator(logger, webhookURL)
		if err != nil {
			return nil, err
		}
		up.cfg, up.stop, up.webhookID = sim.cfg, sim.stop, sim.webhookID
		fmt.Fprintf(stdout, "gateway: simulating Upvest at %s (in process: no real money moves)\n", up.cfg.BaseURL)
	} else {
		var err error
		if up.cfg, err = upvestConfig(cfg); err != nil {
			return nil, err
		}
	}
	client, err := newUpstreamClient(cfg, up.cfg, logger, observe...)
	if err != nil {
		up.stop()
		return nil, err
	}
	up.client, up.clientID = client, up.cfg.ClientID
	return up, nil
}

// upvestConfig is the tenant's Upvest configuration (UPVEST_*), with the
// client secret and the signing key read from their files.
func upvestConfig(cfg Config) (upstream.Config, error) {
	ucfg := upstream.Config{BaseURL: cfg.BaseURL, ClientID: cfg.ClientID}
	secret, err := readSecret("UPVEST_CLIENT_SECRET", cfg.ClientSecret, cfg.ClientSecretFile)
	if err != nil {
		return ucfg, err
	}
	ucfg.ClientSecret = secret
	if ucfg.Signer, err = loadSigner(cfg); err != nil {
		return ucfg, err
	}
	return ucfg, nil
}

// newUpstreamClient makes a client of ucfg, over plain http where
// UPVEST_INSECURE_HTTP allows it.
func newUpstreamClient(cfg Config, ucfg upstream.Config, logger *slog.Logger, observe ...upstream.Option) (*upstream.Client, error) {
	opts := append([]upstream.Option{upstream.WithLogger(logger)}, observe...)
	if insecure, _ := cfg.AllowInsecureHTTP(); insecure { // checked by ParseConfig
		opts = append(opts, upstream.WithInsecureHTTP())
	}
	client, err := upstream.New(ucfg, opts...)
	if err != nil {
		// Its messages name the field and never the secret.
		return nil, &ConfigError{Reason: err.Error()}
	}
	return client, nil
}

// receiverOptions configure the webhook receiver: bound to our client id
// and our webhook subscriptions (GATEWAY_WEBHOOK_IDS, the simulator's with
// --simulate, and those registration adds to the returned set), with the
// body cap, signature age and verification budgets of GATEWAY_WEBHOOK_*.
func receiverOptions(cfg Config, up *upvest) ([]webhook.Option, *webhook.Subscriptions, error) {
	wc, err := cfg.WebhookConfig()
	if err != nil {
		return nil, nil, err
	}
	// The seam for managing webhook subscriptions: whatever registers one
	// with Upvest adds its id here.
	subs, err := webhook.NewSubscriptions(wc.IDs...)
	if err != nil {
		return nil, nil, configErr("GATEWAY_WEBHOOK_IDS", "%v", err)
	}
	if up.webhookID != "" {
		if err := subs.Add(up.webhookID); err != nil {
			return nil, nil, err
		}
	}
	return []webhook.Option{
		webhook.WithClientID(up.clientID),
		webhook.WithSubscriptions(subs),
		webhook.WithMaxBody(wc.MaxBody),
		webhook.WithMaxSignatureAge(wc.MaxSignatureAge),
		webhook.WithRateLimits(wc.Limits),
	}, subs, nil
}

// loadSigner reads and parses the signing key. Errors name the setting and
// the kind of problem, never key material.
func loadSigner(cfg Config) (*httpsig.Signer, error) {
	if err := checkKeyPermissions(cfg); err != nil {
		return nil, err
	}
	pemBytes, err := os.ReadFile(cfg.SigningKeyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, configErr("UPVEST_SIGNING_KEY_FILE", "%q does not exist", cfg.SigningKeyFile)
	case errors.Is(err, fs.ErrPermission):
		return nil, configErr("UPVEST_SIGNING_KEY_FILE", "%q is not readable (permission denied)", cfg.SigningKeyFile)
	case err != nil:
		return nil, configErr("UPVEST_SIGNING_KEY_FILE", "%q cannot be read", cfg.SigningKeyFile)
	}
	passphrase, err := readSecret("UPVEST_SIGNING_KEY_PASSPHRASE", cfg.SigningKeyPassphrase, cfg.SigningKeyPassphraseFile)
	if err != nil {
		return nil, err
	}
	var pass []byte
	if passphrase != "" {
		pass = []byte(passphrase)
	}
	key, err := httpsig.ParsePrivateKey(pemBytes, pass)
	clear(pemBytes)
	clear(pass)
	if err != nil {
		return nil, configErr("UPVEST_SIGNING_KEY_FILE", "%q is not a usable private key: %v", cfg.SigningKeyFile, err)
	}
	signer, err := httpsig.NewSigner(key, cfg.SigningKeyID)
	if err != nil {
		return nil, configErr("UPVEST_SIGNING_KEY_ID", "is not usable: %v", err)
	}
	return signer, nil
}

// checkKeyPermissions refuses a signing key file its group or others may
// read: whoever reads it can sign as the tenant.
func checkKeyPermissions(cfg Config) error {
	if allow, _ := strconv.ParseBool(cfg.SigningKeyInsecurePermissions); allow { // checked by ParseConfig
		return nil
	}
	fi, err := os.Stat(cfg.SigningKeyFile) // through symlinks, as Kubernetes mounts secrets
	if err != nil {
		return nil // reading it says what is wrong
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o077 == 0:
		return nil
	case perm&0o037 == 0 && ownGroup(fi):
		// Readable by the gateway's own group alone: how Kubernetes mounts
		// a secret (root's, mode 0440 from defaultMode 0400) for a pod whose
		// fsGroup is the gateway's group.
		return nil
	}
	return configErr("UPVEST_SIGNING_KEY_FILE", "%q may be read by its group or others (mode %04o): make it 0400 or 0600 "+
		"(in Kubernetes, defaultMode: 0400 with the pod's fsGroup the gateway's group), or set UPVEST_SIGNING_KEY_INSECURE_PERMISSIONS=true", cfg.SigningKeyFile, perm)
}

// readSecret is the value of a secret setting: env's own, or the content of
// the file its _FILE variant names, without the trailing line break that
// editors and secret stores add. Errors name the setting and the file,
// never the content.
func readSecret(env, value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", configErr(env+"_FILE", "%q does not exist", file)
	case err != nil:
		return "", configErr(env+"_FILE", "%q cannot be read", file)
	}
	v := clean(string(b), true)
	clear(b)
	switch {
	case v == "":
		return "", configErr(env+"_FILE", "%q is empty", file)
	case !printable(v):
		return "", configErr(env+"_FILE", "%q holds control characters", file)
	}
	return v, nil
}

// simulator is the in-process Upvest of --simulate.
type simulator struct {
	cfg       upstream.Config
	webhookID string // its subscription delivering to this gateway
	stop      func()
}

// startSimulator serves the simulator on a random loopback port, with a
// fresh P-256 tenant key and random credentials registered in it, and its
// webhook deliveries going to webhookURL.
func startSimulator(logger *slog.Logger, webhookURL string) (*simulator, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("simulator: tenant key: %w", err)
	}
	keyID := "simulate-" + uuid.NewString()[:8]
	cfg := upstream.Config{ClientID: uuid.NewString(), ClientSecret: rand.Text()}
	sim, err := upvestsim.New(upvestsim.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TenantKeys:   map[string]crypto.PublicKey{keyID: key.Public()},
		WebhookURL:   webhookURL,
		Step:         2 * time.Second,
		Logger:       logger.With("component", "upvest-sim"),
	})
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	if cfg.Signer, err = httpsig.NewSigner(key, keyID); err != nil {
		sim.Close()
		return nil, fmt.Errorf("simulator: signer: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sim.Close()
		return nil, fmt.Errorf("simulator: %w", err)
	}
	cfg.BaseURL = "http://" + lis.Addr().String()
	hs := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	return &simulator{cfg: cfg, webhookID: sim.WebhookID(), stop: func() {
		_ = hs.Close()
		sim.Close()
	}}, nil
}

// printExamples shows a first call on each face.
func printExamples(w io.Writer, grpcAddr, httpAddr string) {
	ag := uuid.NewString()
	fmt.Fprintf(w, `gateway: try
  grpcurl -plaintext -d '{"request_id":"%[4]s","account_group_id":"%[1]s","cash_amount":"100.00","currency":"EUR"}' %[2]s upvest.gateway.v1.TopupService/CreateTopup
  curl -s http://%[3]s/v1/account_groups/%[1]s/payments/cash_balance
  curl -sN -H 'Accept: text/event-stream' 'http://%[3]s/v1/payments/topups:watch?account_group_id=%[1]s'
`, ag, grpcAddr, httpAddr, uuid.NewString())
}

// readSecretFiles reads the secrets the *_FILE settings name, once: into
// cfg, for start-up to use, and into what it returns, every secret the log
// must redact wherever it might appear. A file that cannot be read is left
// to start-up, which says why, naming the setting.
func readSecretFiles(cfg *Config) []string {
	secrets := []string{cfg.ClientSecret, cfg.SigningKeyPassphrase}
	for _, s := range []struct {
		env         string
		value, file *string
	}{
		{"UPVEST_CLIENT_SECRET", &cfg.ClientSecret, &cfg.ClientSecretFile},
		{"UPVEST_SIGNING_KEY_PASSPHRASE", &cfg.SigningKeyPassphrase, &cfg.SigningKeyPassphraseFile},
	} {
		if *s.file == "" {
			continue
		}
		v, err := readSecret(s.env, "", *s.file)
		if err != nil {
			continue
		}
		secrets = append(secrets, v)
		if *s.value == "" { // both set is refused, and both are redacted
			*s.value, *s.file = v, ""
		}
	}
	return secrets
}
