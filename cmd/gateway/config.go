package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/idempotency"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/service"
	"github.com/upvest-gateway/gateway/internal/statusindex"
	"github.com/upvest-gateway/gateway/internal/tracing"
	"github.com/upvest-gateway/gateway/internal/webhook"
	"github.com/upvest-gateway/gateway/internal/webhook/registration"
)

// Config is the gateway's configuration: environment variables, each
// overridden by the flag of the same meaning.
type Config struct {
	BaseURL      string
	ClientID     string
	ClientSecret string // secret
	// ClientSecretFile holds the client secret instead (the Kubernetes
	// secret-mount convention); read by Secrets.
	ClientSecretFile     string
	SigningKeyFile       string
	SigningKeyID         string
	SigningKeyPassphrase string // secret
	// SigningKeyPassphraseFile holds the passphrase instead; read by Secrets.
	SigningKeyPassphraseFile string
	// SigningKeyInsecurePermissions accepts a key file that others than
	// its owner may read.
	SigningKeyInsecurePermissions string
	// InsecureHTTP allows a plain http UPVEST_BASE_URL on a host other than
	// loopback: only for a simulator on a private network (deploy/compose.yaml).
	InsecureHTTP string
	GRPCAddr     string
	HTTPAddr     string
	// WebhookAddr, when set, is the webhook receiver's own listener.
	WebhookAddr string
	// AdminAddr is the admin listener's: metrics, profiles, health; "off"
	// for none.
	AdminAddr string
	// ShutdownDelay is how long the gateway serves on, not ready, after
	// SIGTERM; DrainTimeout how long calls in flight then get to finish.
	ShutdownDelay, DrainTimeout string
	// LogFormat is json or text ("": json, text with --simulate);
	// LogLevel debug, info, warn or error.
	LogFormat, LogLevel string
	// Caller security: TLS files, the policy file, bearer tokens' JWKS and
	// claims, and the explicit opt-out. Checked by checkSecurity, loaded by
	// loadSecurity.
	TLSCertFile, TLSKeyFile, TLSClientCAFile string
	PolicyFile                               string
	JWTJWKSFile, JWTJWKSURL                  string
	JWTIssuer, JWTAudience, JWTIdentityClaim string
	InsecureAllowUnauthenticated             string
	// Limits: connections per listener and per remote address, the body
	// timeout, open streams, gRPC connection age. Checked and converted by
	// Limits.
	MaxConns, MaxConnsPerIP, BodyTimeout, MaxStreams, GRPCMaxConnectionAge string
	DataDir                                                                string
	// NATSURL is empty for the embedded event log, else a comma-separated
	// list of NATS server URLs (a cluster). It may carry credentials, so it
	// is treated as a secret.
	NATSURL string
	// The event log's stream: its name, subject prefix, retention (age and
	// size), de-duplication window and, on an external NATS cluster,
	// replicas. Checked and converted by LogConfig.
	EventsStream          string
	EventsSubject         string
	EventsMaxAge          string
	EventsMaxBytes        string
	EventsDuplicateWindow string
	NATSReplicas          string
	EventsSyncAlways      string
	// IdempotencyBucket is the key-value bucket of the idempotency store;
	// IdempotencyRetention is how long a request_id's outcome is kept.
	IdempotencyBucket    string
	IdempotencyRetention string
	// StatusBucket is the key-value bucket of the gateway's record of
	// virtual cash decreases.
	StatusBucket string
	// AllowMissingRequestID lets creating calls without a request_id
	// through with a key the gateway makes (default false: refused).
	AllowMissingRequestID string
	// Browsers: the origins that may call the HTTP listener (CORS), and
	// whether with credentials. Checked and converted by CORS.
	CORSAllowedOrigins   string
	CORSAllowCredentials string
	// The webhook receiver: our subscriptions, the body cap, how old a
	// signature may be, and the verification budgets. Checked and
	// converted by WebhookConfig.
	WebhookIDs             string
	WebhookMaxBody         string
	WebhookMaxSignatureAge string
	WebhookSourceRate      string
	WebhookSourceBurst     string
	WebhookGlobalRate      string
	WebhookGlobalBurst     string
	// WebhookPublicURL, when set, is where Upvest is to deliver: the
	// gateway registers (creates or updates, and enables) its webhook
	// subscription for that URL at start-up. Checked by Registration.
	WebhookPublicURL string
	// How Watch streams catch up: at most this many at once from the log,
	// and from this many of the latest events kept in memory. Checked and
	// converted by LogOptions.
	StreamsMaxCatchUps  string
	StreamsRecentEvents string
	Simulate            bool
	// Tracing is what the OTEL_* variables ask for (internal/tracing).
	Tracing tracing.Settings
}

// setting is one configuration value: its variable, its flag and how to
// check it.
type setting struct {
	env, flag, def, usage string
	secret                bool
	field                 func(*Config) *string
}

var settings = []setting{
	{env: "UPVEST_BASE_URL", flag: "upvest-base-url", def: "https://sandbox.upvest.co", usage: "the Upvest Investment API",
		field: func(c *Config) *string { return &c.BaseURL }},
	{env: "UPVEST_CLIENT_ID", flag: "upvest-client-id", usage: "tenant client id (UUID)",
		field: func(c *Config) *string { return &c.ClientID }},
	{env: "UPVEST_CLIENT_SECRET", flag: "upvest-client-secret", secret: true, usage: "OAuth2 client secret (prefer the variable: flags show in ps)",
		field: func(c *Config) *string { return &c.ClientSecret }},
	{env: "UPVEST_CLIENT_SECRET_FILE", flag: "upvest-client-secret-file", usage: "file holding the OAuth2 client secret (instead of UPVEST_CLIENT_SECRET)",
		field: func(c *Config) *string { return &c.ClientSecretFile }},
	{env: "UPVEST_SIGNING_KEY_FILE", flag: "upvest-signing-key-file", usage: "PEM private key for request signatures",
		field: func(c *Config) *string { return &c.SigningKeyFile }},
	{env: "UPVEST_SIGNING_KEY_ID", flag: "upvest-signing-key-id", usage: "the id Upvest knows the signing key by",
		field: func(c *Config) *string { return &c.SigningKeyID }},
	{env: "UPVEST_SIGNING_KEY_PASSPHRASE", flag: "upvest-signing-key-passphrase", secret: true, usage: "passphrase of a protected signing key (prefer the variable)",
		field: func(c *Config) *string { return &c.SigningKeyPassphrase }},
	{env: "UPVEST_SIGNING_KEY_PASSPHRASE_FILE", flag: "upvest-signing-key-passphrase-file", usage: "file holding the signing key's passphrase (instead of UPVEST_SIGNING_KEY_PASSPHRASE)",
		field: func(c *Config) *string { return &c.SigningKeyPassphraseFile }},
	{env: "UPVEST_SIGNING_KEY_INSECURE_PERMISSIONS", flag: "upvest-signing-key-insecure-permissions", def: "false", usage: "accept a signing key file that its group or others may read",
		field: func(c *Config) *string { return &c.SigningKeyInsecurePermissions }},
	{env: "UPVEST_INSECURE_HTTP", flag: "upvest-insecure-http", def: "false", usage: "allow a plain http UPVEST_BASE_URL on a non-loopback host, e.g. a simulator on a private network (never for Upvest)",
		field: func(c *Config) *string { return &c.InsecureHTTP }},
	{env: "GATEWAY_GRPC_ADDR", flag: "grpc-addr", def: "127.0.0.1:9090", usage: "gRPC listen address",
		field: func(c *Config) *string { return &c.GRPCAddr }},
	{env: "GATEWAY_HTTP_ADDR", flag: "http-addr", def: "127.0.0.1:8080", usage: "HTTP listen address (REST, /openapi.json, /healthz)",
		field: func(c *Config) *string { return &c.HTTPAddr }},
	{env: "GATEWAY_WEBHOOK_ADDR", flag: "webhook-addr", usage: "listen address of the webhook receiver alone (default: served on GATEWAY_HTTP_ADDR); the one port to expose to Upvest",
		field: func(c *Config) *string { return &c.WebhookAddr }},
	{env: "GATEWAY_ADMIN_ADDR", flag: "admin-addr", def: "127.0.0.1:9091", usage: "listen address of the admin listener: /metrics, /debug/pprof/, /healthz, /readyz; it checks no caller, so keep it off untrusted networks (off: none)",
		field: func(c *Config) *string { return &c.AdminAddr }},
	{env: "GATEWAY_SHUTDOWN_DELAY", flag: "shutdown-delay", def: "5s", usage: "after SIGTERM, how long the gateway serves on while /readyz and gRPC health say it is not ready, so endpoints are updated before anything is refused",
		field: func(c *Config) *string { return &c.ShutdownDelay }},
	{env: "GATEWAY_DRAIN_TIMEOUT", flag: "drain-timeout", def: "20s", usage: "then how long calls in flight get to finish before they are cut off (keep delay + drain below the orchestrator's grace period)",
		field: func(c *Config) *string { return &c.DrainTimeout }},
	{env: "GATEWAY_LOG_FORMAT", flag: "log-format", usage: "json or text (default json; text with --simulate)",
		field: func(c *Config) *string { return &c.LogFormat }},
	{env: "GATEWAY_LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error",
		field: func(c *Config) *string { return &c.LogLevel }},
	{env: "GATEWAY_TLS_CERT_FILE", flag: "tls-cert-file", usage: "PEM certificate chain of the gRPC, HTTP and webhook listeners (reloaded when it changes); with GATEWAY_TLS_KEY_FILE",
		field: func(c *Config) *string { return &c.TLSCertFile }},
	{env: "GATEWAY_TLS_KEY_FILE", flag: "tls-key-file", usage: "PEM private key of GATEWAY_TLS_CERT_FILE",
		field: func(c *Config) *string { return &c.TLSKeyFile }},
	{env: "GATEWAY_TLS_CLIENT_CA_FILE", flag: "tls-client-ca-file", usage: "PEM bundle of the CAs whose client certificates identify callers (mutual TLS; reloaded when it changes)",
		field: func(c *Config) *string { return &c.TLSClientCAFile }},
	{env: "GATEWAY_POLICY_FILE", flag: "policy-file", usage: "YAML file of the callers, the RPCs and account groups each may use, and their limits (reloaded when it changes)",
		field: func(c *Config) *string { return &c.PolicyFile }},
	{env: "GATEWAY_JWT_JWKS_FILE", flag: "jwt-jwks-file", usage: "JWKS file of the keys that sign callers' bearer tokens (or GATEWAY_JWT_JWKS_URL)",
		field: func(c *Config) *string { return &c.JWTJWKSFile }},
	{env: "GATEWAY_JWT_JWKS_URL", flag: "jwt-jwks-url", usage: "https URL of the JWKS of the keys that sign callers' bearer tokens (or GATEWAY_JWT_JWKS_FILE)",
		field: func(c *Config) *string { return &c.JWTJWKSURL }},
	{env: "GATEWAY_JWT_ISSUER", flag: "jwt-issuer", usage: "the iss every bearer token must carry",
		field: func(c *Config) *string { return &c.JWTIssuer }},
	{env: "GATEWAY_JWT_AUDIENCE", flag: "jwt-audience", usage: "the aud every bearer token must carry",
		field: func(c *Config) *string { return &c.JWTAudience }},
	{env: "GATEWAY_JWT_IDENTITY_CLAIM", flag: "jwt-identity-claim", def: "sub", usage: "the bearer token claim that names the caller in the policy",
		field: func(c *Config) *string { return &c.JWTIdentityClaim }},
	{env: "GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED", flag: "insecure-allow-unauthenticated", def: "false", usage: "without mutual TLS or bearer tokens, listen beyond loopback anyway: anyone who reaches the ports can move money",
		field: func(c *Config) *string { return &c.InsecureAllowUnauthenticated }},
	{env: "GATEWAY_DATA_DIR", flag: "data-dir", def: "./data", usage: "directory of the embedded event log",
		field: func(c *Config) *string { return &c.DataDir }},
	{env: "GATEWAY_NATS_URL", flag: "nats-url", secret: true, usage: "external NATS server URLs, comma-separated (default: embedded)",
		field: func(c *Config) *string { return &c.NATSURL }},
	{env: "GATEWAY_NATS_REPLICAS", flag: "nats-replicas", def: "auto", usage: "replicas of the event streams on an external NATS cluster: 1 to 5, or auto (3 on a cluster of 3 or more servers, else 1); more than the cluster has servers stops start-up",
		field: func(c *Config) *string { return &c.NATSReplicas }},
	{env: "GATEWAY_EVENTS_STREAM", flag: "events-stream", def: events.DefaultStream, usage: "JetStream stream name of the event log; replicas sharing a log use the same",
		field: func(c *Config) *string { return &c.EventsStream }},
	{env: "GATEWAY_EVENTS_SUBJECT", flag: "events-subject", def: events.DefaultSubject, usage: "subject prefix of the event log",
		field: func(c *Config) *string { return &c.EventsSubject }},
	{env: "GATEWAY_EVENTS_MAX_AGE", flag: "events-max-age", def: "168h", usage: "how long events are kept, and so how old a resume token may be",
		field: func(c *Config) *string { return &c.EventsMaxAge }},
	{env: "GATEWAY_EVENTS_MAX_BYTES", flag: "events-max-bytes", def: "1GiB", usage: "size limit of the event log, in bytes or with a KiB, MiB, GiB or TiB suffix; the oldest events go first",
		field: func(c *Config) *string { return &c.EventsMaxBytes }},
	{env: "GATEWAY_EVENTS_SYNC_ALWAYS", flag: "events-sync-always", def: "true", usage: "embedded log: every event is on disk (fsync) before Upvest's delivery is acknowledged, so acknowledged events survive a power loss; concurrent deliveries share one fsync",
		field: func(c *Config) *string { return &c.EventsSyncAlways }},
	{env: "GATEWAY_STREAMS_MAX_CATCHUPS", flag: "streams-max-catchups", def: strconv.Itoa(events.DefaultCatchUps), usage: "Watch streams that may catch up from the event log at once, each with a JetStream consumer of its own (resumes from old tokens, subscribers that fell far behind); others wait their turn",
		field: func(c *Config) *string { return &c.StreamsMaxCatchUps }},
	{env: "GATEWAY_STREAMS_RECENT_EVENTS", flag: "streams-recent-events", def: strconv.Itoa(events.DefaultRecentEvents), usage: "latest events kept in memory, from which a Watch stream a little behind catches up without reading the log (0: none)",
		field: func(c *Config) *string { return &c.StreamsRecentEvents }},
	{env: "GATEWAY_EVENTS_DUPLICATE_WINDOW", flag: "events-duplicate-window", def: "24h", usage: "how long an event id is remembered to drop Upvest's repeated deliveries (at most the max age)",
		field: func(c *Config) *string { return &c.EventsDuplicateWindow }},
	{env: "GATEWAY_IDEMPOTENCY_BUCKET", flag: "idempotency-bucket", def: idempotency.DefaultBucket, usage: "JetStream key-value bucket of the idempotency store; replicas sharing a store use the same",
		field: func(c *Config) *string { return &c.IdempotencyBucket }},
	{env: "GATEWAY_IDEMPOTENCY_RETENTION", flag: "idempotency-retention", def: "24h", usage: "how long the outcome of a request_id is kept to answer its repeats (the idempotency store shares GATEWAY_NATS_REPLICAS)",
		field: func(c *Config) *string { return &c.IdempotencyRetention }},
	{env: "GATEWAY_STATUS_BUCKET", flag: "status-bucket", def: statusindex.DefaultBucket, usage: "JetStream key-value bucket of the gateway's record of virtual cash decreases; replicas sharing a log use the same",
		field: func(c *Config) *string { return &c.StatusBucket }},
	{env: "GATEWAY_ALLOW_MISSING_REQUEST_ID", flag: "allow-missing-request-id", def: "false", usage: "let creating calls without a request_id through, with a key the gateway makes per call (a caller's retry of such a call acts twice)",
		field: func(c *Config) *string { return &c.AllowMissingRequestID }},
	{env: "GATEWAY_CORS_ALLOWED_ORIGINS", flag: "cors-allowed-origins", usage: "browser origins (scheme://host[:port], comma-separated, or *) that may call the REST face, read its streams and use gRPC-Web on the HTTP listener; unset: none",
		field: func(c *Config) *string { return &c.CORSAllowedOrigins }},
	{env: "GATEWAY_CORS_ALLOW_CREDENTIALS", flag: "cors-allow-credentials", def: "false", usage: "let those pages send cookies and TLS client certificates (not with *); bearer tokens need no credentials",
		field: func(c *Config) *string { return &c.CORSAllowCredentials }},
	{env: "GATEWAY_MAX_CONNECTIONS", flag: "max-connections", def: "4096", usage: "connections each listener holds at once; more wait in the kernel's backlog (keep the sum below the open-files limit)",
		field: func(c *Config) *string { return &c.MaxConns }},
	{env: "GATEWAY_MAX_CONNECTIONS_PER_IP", flag: "max-connections-per-ip", def: "512", usage: "connections one remote address may hold on each listener; more are closed at once (0: no limit, e.g. behind a load balancer)",
		field: func(c *Config) *string { return &c.MaxConnsPerIP }},
	{env: "GATEWAY_HTTP_BODY_TIMEOUT", flag: "http-body-timeout", def: "10s", usage: "how long a client may take to send a request body (REST calls, webhook deliveries)",
		field: func(c *Config) *string { return &c.BodyTimeout }},
	{env: "GATEWAY_MAX_STREAMS", flag: "max-streams", def: "20000", usage: "Watch streams served at once, all callers together; more are refused with RESOURCE_EXHAUSTED",
		field: func(c *Config) *string { return &c.MaxStreams }},
	{env: "GATEWAY_GRPC_MAX_CONNECTION_AGE", flag: "grpc-max-connection-age", def: "1h", usage: "gRPC clients reconnect after this long (streams end UNAVAILABLE and resume), so connections spread over new replicas",
		field: func(c *Config) *string { return &c.GRPCMaxConnectionAge }},
	{env: "GATEWAY_WEBHOOK_IDS", flag: "webhook-ids", usage: "ids of this gateway's Upvest webhook subscriptions (UUIDs, comma-separated): a delivery for another subscription is refused; unset, deliveries are bound by upvest-client-id alone where signed",
		field: func(c *Config) *string { return &c.WebhookIDs }},
	{env: "GATEWAY_WEBHOOK_PUBLIC_URL", flag: "webhook-public-url", usage: "the public URL Upvest delivers webhooks to (ending in " + server.WebhookPath + " unless a proxy rewrites it): set, the gateway registers its subscription there at start-up, and enables it; unset, subscriptions are managed by hand ('gateway webhooks')",
		field: func(c *Config) *string { return &c.WebhookPublicURL }},
	{env: "GATEWAY_WEBHOOK_MAX_BODY", flag: "webhook-max-body", def: "2MiB", usage: "largest webhook delivery body, in bytes or with a KiB or MiB suffix (a subscription's max_package_size is at most 1MiB)",
		field: func(c *Config) *string { return &c.WebhookMaxBody }},
	{env: "GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE", flag: "webhook-max-signature-age", usage: "how old a delivery's signature may be, as Upvest re-sends deliveries with their original signature (default and maximum: GATEWAY_EVENTS_DUPLICATE_WINDOW)",
		field: func(c *Config) *string { return &c.WebhookMaxSignatureAge }},
	{env: "GATEWAY_WEBHOOK_SOURCE_RATE", flag: "webhook-source-rate", def: "10", usage: "signature verifications per second one source address may cause before it proves to be Upvest; more are answered 429",
		field: func(c *Config) *string { return &c.WebhookSourceRate }},
	{env: "GATEWAY_WEBHOOK_SOURCE_BURST", flag: "webhook-source-burst", def: "20", usage: "... of which this many at once",
		field: func(c *Config) *string { return &c.WebhookSourceBurst }},
	{env: "GATEWAY_WEBHOOK_GLOBAL_RATE", flag: "webhook-global-rate", def: "50", usage: "signature verifications per second all unproven senders together may cause",
		field: func(c *Config) *string { return &c.WebhookGlobalRate }},
	{env: "GATEWAY_WEBHOOK_GLOBAL_BURST", flag: "webhook-global-burst", def: "100", usage: "... of which this many at once",
		field: func(c *Config) *string { return &c.WebhookGlobalBurst }},
}

func settingOf(env string) setting {
	for _, s := range settings {
		if s.env == env {
			return s
		}
	}
	panic("unknown setting " + env)
}

// ConfigError is a missing or bad setting. Its text names the variable and
// the flag, and never holds a secret's value.
type ConfigError struct {
	Env, Flag string
	Reason    string // e.g. "is required", `"x" is not a host:port address`
}

func (e *ConfigError) Error() string {
	if e.Env == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s %s (or --%s)", e.Env, e.Reason, e.Flag)
}

func configErr(env, format string, args ...any) *ConfigError {
	s := settingOf(env)
	return &ConfigError{Env: s.env, Flag: s.flag, Reason: fmt.Sprintf(format, args...)}
}

// ParseConfig builds the configuration from the environment and the
// command line, without touching anything else: flags win over variables,
// variables over defaults. It returns flag.ErrHelp for -h, and otherwise
// the first problem as a *ConfigError.
func ParseConfig(env map[string]string, args []string) (Config, error) {
	cfg, positional, err := parseSettings(env, args, false)
	if err != nil {
		return Config{}, err
	}
	if len(positional) > 0 {
		// Not echoed: a misplaced argument may well be a secret.
		return Config{}, &ConfigError{Reason: fmt.Sprintf("unexpected argument #%d: every setting is a --flag=value or an environment variable", 1+len(args)-len(positional))}
	}
	if cfg.Tracing, err = tracing.ParseEnv(env); err != nil {
		return cfg, &ConfigError{Reason: err.Error()}
	}
	return cfg, cfg.validate()
}

// parseSettings reads the settings from env and the flags in args, and
// returns the arguments that are not flags. Unless interspersed, the first
// such argument ends the flags; otherwise flags may come before and after
// them (a command's operands). It does not validate.
func parseSettings(env map[string]string, args []string, interspersed bool) (Config, []string, error) {
	var cfg Config
	fs := newFlagSet(&cfg, io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return Config{}, nil, err
			}
			// The flag package names only the flag, never its value.
			return Config{}, nil, &ConfigError{Reason: strings.Replace(err.Error(), "provided but not defined: -", "provided but not defined: --", 1)}
		}
		if fs.NArg() == 0 || !interspersed {
			positional = append(positional, fs.Args()...)
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range settings {
		p := s.field(&cfg)
		if !set[s.flag] {
			*p = s.def
			if v := env[s.env]; v != "" {
				*p = v
			}
		}
		*p = clean(*p, s.secret)
	}
	return cfg, positional, nil
}

func newFlagSet(cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(out)
	for _, s := range settings {
		usage := s.usage + " [" + s.env + "]"
		fs.StringVar(s.field(cfg), s.flag, s.def, usage)
	}
	fs.BoolVar(&cfg.Simulate, "simulate", false, "run against an in-process Upvest simulator; needs no UPVEST_* value")
	return fs
}

// clean trims what a secret store or a shell tends to add: surrounding
// white space, and for secrets only a trailing line break (inner or
// leading spaces may be part of a passphrase).
func clean(v string, secret bool) string {
	if secret {
		return strings.TrimRight(v, "\r\n")
	}
	return strings.TrimSpace(v)
}

// validate checks every value, in the order of the table, so the first
// error is the one an operator sees first in the docs too.
func (c Config) validate() error {
	insecure, err := c.AllowInsecureHTTP()
	if err != nil {
		return err
	}
	if !c.Simulate {
		if err := checkBaseURL(c.BaseURL, insecure); err != nil {
			return err
		}
		switch {
		case c.ClientID == "":
			return configErr("UPVEST_CLIENT_ID", "is required")
		case !isUUID(c.ClientID):
			return configErr("UPVEST_CLIENT_ID", "%q is not a UUID", c.ClientID)
		case c.ClientSecret == "" && c.ClientSecretFile == "":
			return configErr("UPVEST_CLIENT_SECRET", "is required, or UPVEST_CLIENT_SECRET_FILE")
		case c.ClientSecret != "" && c.ClientSecretFile != "":
			return configErr("UPVEST_CLIENT_SECRET_FILE", "and UPVEST_CLIENT_SECRET are both set: choose one")
		case c.SigningKeyPassphrase != "" && c.SigningKeyPassphraseFile != "":
			return configErr("UPVEST_SIGNING_KEY_PASSPHRASE_FILE", "and UPVEST_SIGNING_KEY_PASSPHRASE are both set: choose one")
		case !printable(c.ClientSecret):
			return configErr("UPVEST_CLIENT_SECRET", "contains control characters")
		case c.SigningKeyFile == "":
			return configErr("UPVEST_SIGNING_KEY_FILE", "is required")
		case strings.ContainsRune(c.SigningKeyFile, 0):
			return configErr("UPVEST_SIGNING_KEY_FILE", "is not a valid path")
		case c.SigningKeyID == "":
			return configErr("UPVEST_SIGNING_KEY_ID", "is required")
		case !keyIDChars(c.SigningKeyID):
			return configErr("UPVEST_SIGNING_KEY_ID", "must be printable ASCII without quotes or backslashes")
		case !printable(c.SigningKeyPassphrase):
			return configErr("UPVEST_SIGNING_KEY_PASSPHRASE", "contains control characters")
		}
	}
	if _, err := strconv.ParseBool(c.SigningKeyInsecurePermissions); err != nil {
		return configErr("UPVEST_SIGNING_KEY_INSECURE_PERMISSIONS", "%q is not true or false", c.SigningKeyInsecurePermissions)
	}
	if err := checkAddr("GATEWAY_GRPC_ADDR", c.GRPCAddr); err != nil {
		return err
	}
	if err := checkAddr("GATEWAY_HTTP_ADDR", c.HTTPAddr); err != nil {
		return err
	}
	if c.GRPCAddr == c.HTTPAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
		return configErr("GATEWAY_HTTP_ADDR", "%q is also GATEWAY_GRPC_ADDR", c.HTTPAddr)
	}
	if c.WebhookAddr != "" {
		if err := checkAddr("GATEWAY_WEBHOOK_ADDR", c.WebhookAddr); err != nil {
			return err
		}
		if (c.WebhookAddr == c.HTTPAddr || c.WebhookAddr == c.GRPCAddr) && !strings.HasSuffix(c.WebhookAddr, ":0") {
			return configErr("GATEWAY_WEBHOOK_ADDR", "%q is also GATEWAY_HTTP_ADDR or GATEWAY_GRPC_ADDR", c.WebhookAddr)
		}
	}
	if c.AdminAddr != AdminOff {
		if err := checkAddr("GATEWAY_ADMIN_ADDR", c.AdminAddr); err != nil {
			return err
		}
		if (c.AdminAddr == c.HTTPAddr || c.AdminAddr == c.GRPCAddr || c.AdminAddr == c.WebhookAddr) && !strings.HasSuffix(c.AdminAddr, ":0") {
			return configErr("GATEWAY_ADMIN_ADDR", "%q is also the address of another listener", c.AdminAddr)
		}
	}
	if _, err := c.Lifecycle(); err != nil {
		return err
	}
	if _, err := c.Logging(); err != nil {
		return err
	}
	if _, err := c.Limits(); err != nil {
		return err
	}
	if err := c.checkSecurity(); err != nil {
		return err
	}
	switch {
	case c.DataDir == "":
		return configErr("GATEWAY_DATA_DIR", "must not be empty")
	case strings.ContainsRune(c.DataDir, 0):
		return configErr("GATEWAY_DATA_DIR", "is not a valid path")
	}
	if err := checkNATSURL(c.NATSURL); err != nil {
		return err
	}
	if _, err := c.BrokerConfig(); err != nil {
		return err
	}
	if _, err := c.CORS(); err != nil {
		return err
	}
	if _, err := c.ServiceOptions(); err != nil {
		return err
	}
	if _, err := c.IdempotencyConfig(); err != nil {
		return err
	}
	if !bucketName(c.StatusBucket) {
		return configErr("GATEWAY_STATUS_BUCKET", "%q is not a bucket name (letters, digits, - and _)", c.StatusBucket)
	}
	if _, err = c.LogConfig(); err != nil {
		return err
	}
	if _, err = c.LogOptions(); err != nil {
		return err
	}
	if _, err = c.WebhookConfig(); err != nil {
		return err
	}
	_, _, err = c.Registration()
	return err
}

// IdempotencyConfig is the idempotency store's configuration: its bucket
// beside the event log, with the log's replicas.
func (c Config) IdempotencyConfig() (idempotency.Config, error) {
	ic := idempotency.Config{Bucket: c.IdempotencyBucket}
	if !bucketName(ic.Bucket) {
		return ic, configErr("GATEWAY_IDEMPOTENCY_BUCKET", "%q is not a bucket name (letters, digits, - and _)", ic.Bucket)
	}
	var err error
	if ic.Retention, err = positiveDuration("GATEWAY_IDEMPOTENCY_RETENTION", c.IdempotencyRetention); err != nil {
		return ic, err
	}
	lc, err := c.LogConfig()
	if err != nil {
		return ic, err
	}
	ic.Replicas = lc.Replicas
	return ic, nil
}

// Authenticated reports whether callers prove who they are: by client
// certificate (mutual TLS) or by bearer token.
func (c Config) Authenticated() bool {
	return c.TLSClientCAFile != "" || c.JWTJWKSFile != "" || c.JWTJWKSURL != ""
}

// InsecureUnauthenticated is GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED as a bool.
func (c Config) InsecureUnauthenticated() (bool, error) {
	b, err := strconv.ParseBool(c.InsecureAllowUnauthenticated)
	if err != nil {
		return false, configErr("GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED", "%q is not true or false", c.InsecureAllowUnauthenticated)
	}
	return b, nil
}

// checkSecurity checks the caller-security settings fit together, without
// reading any file: that is loadSecurity's.
func (c Config) checkSecurity() error {
	insecure, err := c.InsecureUnauthenticated()
	if err != nil {
		return err
	}
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		if c.TLSCertFile == "" {
			return configErr("GATEWAY_TLS_CERT_FILE", "is required with GATEWAY_TLS_KEY_FILE")
		}
		return configErr("GATEWAY_TLS_KEY_FILE", "is required with GATEWAY_TLS_CERT_FILE")
	case c.TLSClientCAFile != "" && c.TLSCertFile == "":
		return configErr("GATEWAY_TLS_CLIENT_CA_FILE", "needs GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE: mutual TLS is TLS")
	case c.JWTJWKSFile != "" && c.JWTJWKSURL != "":
		return configErr("GATEWAY_JWT_JWKS_URL", "and GATEWAY_JWT_JWKS_FILE are both set: choose one")
	}
	if c.JWTJWKSFile != "" || c.JWTJWKSURL != "" {
		switch {
		case c.JWTIssuer == "":
			return configErr("GATEWAY_JWT_ISSUER", "is required with a JWKS: every bearer token must name its issuer")
		case c.JWTAudience == "":
			return configErr("GATEWAY_JWT_AUDIENCE", "is required with a JWKS: every bearer token must name this gateway")
		case c.JWTIdentityClaim == "":
			return configErr("GATEWAY_JWT_IDENTITY_CLAIM", "must not be empty")
		}
	}
	if c.Authenticated() {
		if c.PolicyFile == "" {
			return configErr("GATEWAY_POLICY_FILE", "is required when callers are authenticated: with no policy, no caller may call anything")
		}
		if insecure {
			return configErr("GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED", "contradicts GATEWAY_TLS_CLIENT_CA_FILE or the JWKS, which authenticate callers")
		}
		return nil
	}
	if insecure {
		return nil
	}
	// No caller proves who it is: only callers on this host may reach the API.
	for _, a := range []struct{ env, addr string }{{"GATEWAY_GRPC_ADDR", c.GRPCAddr}, {"GATEWAY_HTTP_ADDR", c.HTTPAddr}} {
		if host, _, _ := net.SplitHostPort(a.addr); !isLoopback(host) {
			return configErr(a.env, "%q is not a loopback address, and callers are not authenticated: "+
				"set GATEWAY_TLS_CLIENT_CA_FILE (mutual TLS) or a JWKS (bearer tokens) with GATEWAY_POLICY_FILE, "+
				"or GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED=true to let anyone who reaches it move money", a.addr)
		}
	}
	return nil
}

// AdminOff as GATEWAY_ADMIN_ADDR serves no admin listener.
const AdminOff = "off"

// Lifecycle is how the gateway stops: the shutdown delay and the drain
// timeout.
type Lifecycle struct {
	ShutdownDelay, DrainTimeout time.Duration
}

// Lifecycle checks and converts GATEWAY_SHUTDOWN_DELAY and
// GATEWAY_DRAIN_TIMEOUT.
func (c Config) Lifecycle() (Lifecycle, error) {
	var l Lifecycle
	d, err := time.ParseDuration(c.ShutdownDelay)
	if err != nil || d < 0 || d > time.Hour {
		return l, configErr("GATEWAY_SHUTDOWN_DELAY", "%q is not a duration from 0s to 1h, such as 5s", c.ShutdownDelay)
	}
	l.ShutdownDelay = d
	if l.DrainTimeout, err = positiveDuration("GATEWAY_DRAIN_TIMEOUT", c.DrainTimeout); err != nil {
		return l, err
	}
	return l, nil
}

// Logging is the log's format and level.
type Logging struct {
	Format string // "json" or "text"
	Level  slog.Level
}

// Logging checks and converts GATEWAY_LOG_FORMAT and GATEWAY_LOG_LEVEL.
func (c Config) Logging() (Logging, error) {
	l := Logging{Format: strings.ToLower(c.LogFormat)}
	switch l.Format {
	case "":
		l.Format = "json"
		if c.Simulate {
			l.Format = "text" // for a person at a terminal
		}
	case "json", "text":
	default:
		return l, configErr("GATEWAY_LOG_FORMAT", "%q is neither json nor text", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		l.Level = slog.LevelDebug
	case "info":
		l.Level = slog.LevelInfo
	case "warn", "warning":
		l.Level = slog.LevelWarn
	case "error":
		l.Level = slog.LevelError
	default:
		return l, configErr("GATEWAY_LOG_LEVEL", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	return l, nil
}

// Limits are the server's limits (GATEWAY_MAX_CONNECTIONS and the rest).
func (c Config) Limits() (server.Limits, error) {
	var l server.Limits
	count := func(env, v string, min int) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return 0, configErr(env, "%q is not a whole number of at least %d", v, min)
		}
		return n, nil
	}
	var err error
	if l.MaxConns, err = count("GATEWAY_MAX_CONNECTIONS", c.MaxConns, 1); err != nil {
		return l, err
	}
	if l.MaxConnsPerIP, err = count("GATEWAY_MAX_CONNECTIONS_PER_IP", c.MaxConnsPerIP, 0); err != nil {
		return l, err
	}
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = -1 // off
	}
	if l.MaxStreams, err = count("GATEWAY_MAX_STREAMS", c.MaxStreams, 1); err != nil {
		return l, err
	}
	if l.BodyTimeout, err = positiveDuration("GATEWAY_HTTP_BODY_TIMEOUT", c.BodyTimeout); err != nil {
		return l, err
	}
	if l.MaxConnectionAge, err = positiveDuration("GATEWAY_GRPC_MAX_CONNECTION_AGE", c.GRPCMaxConnectionAge); err != nil {
		return l, err
	}
	return l, nil
}

// ServiceOptions are the options of the four services.
func (c Config) ServiceOptions() ([]service.Option, error) {
	allow, err := strconv.ParseBool(c.AllowMissingRequestID)
	if err != nil {
		return nil, configErr("GATEWAY_ALLOW_MISSING_REQUEST_ID", "%q is not true or false", c.AllowMissingRequestID)
	}
	var opts []service.Option
	if allow {
		opts = append(opts, service.WithGeneratedRequestIDs())
	}
	return opts, nil
}

// AllowInsecureHTTP is UPVEST_INSECURE_HTTP as a bool.
func (c Config) AllowInsecureHTTP() (bool, error) {
	b, err := strconv.ParseBool(c.InsecureHTTP)
	if err != nil {
		return false, configErr("UPVEST_INSECURE_HTTP", "%q is not true or false", c.InsecureHTTP)
	}
	return b, nil
}

// BrokerConfig is where NATS runs: embedded under DataDir, or at NATSURL.
func (c Config) BrokerConfig() (broker.Config, error) {
	bc := broker.Config{URL: c.NATSURL, DataDir: c.DataDir}
	var err error
	// The events' guarantee ("an acknowledged event survives a power loss")
	// comes from group commit: the log syncs once for every delivery
	// acknowledged together, not once per event.
	if bc.GroupCommit, err = strconv.ParseBool(c.EventsSyncAlways); err != nil {
		return bc, configErr("GATEWAY_EVENTS_SYNC_ALWAYS", "%q is not true or false", c.EventsSyncAlways)
	}
	return bc, nil
}

// LogConfig is the event log's configuration. Errors name the setting at
// fault.
func (c Config) LogConfig() (events.LogConfig, error) {
	lc := events.LogConfig{Stream: c.EventsStream, Subject: c.EventsSubject}
	var err error
	if lc.MaxAge, err = positiveDuration("GATEWAY_EVENTS_MAX_AGE", c.EventsMaxAge); err != nil {
		return lc, err
	}
	if lc.DuplicateWindow, err = positiveDuration("GATEWAY_EVENTS_DUPLICATE_WINDOW", c.EventsDuplicateWindow); err != nil {
		return lc, err
	}
	if lc.MaxBytes, err = parseBytes("GATEWAY_EVENTS_MAX_BYTES", c.EventsMaxBytes, "1073741824 or 1GiB"); err != nil {
		return lc, err
	}
	// 0 is auto: the broker settles it by the size of the cluster.
	if c.NATSReplicas != "auto" {
		n, err := strconv.Atoi(c.NATSReplicas)
		switch {
		case err != nil || n < 1 || n > broker.MaxReplicas:
			return lc, configErr("GATEWAY_NATS_REPLICAS", "%q is neither auto nor a number from 1 to 5", c.NATSReplicas)
		case n > 1 && c.NATSURL == "":
			return lc, configErr("GATEWAY_NATS_REPLICAS", "must be 1 or auto with the embedded event log (GATEWAY_NATS_URL unset)")
		}
		lc.Replicas = n
	}
	switch {
	case lc.DuplicateWindow > lc.MaxAge:
		return lc, configErr("GATEWAY_EVENTS_DUPLICATE_WINDOW", "%s is longer than GATEWAY_EVENTS_MAX_AGE %s", lc.DuplicateWindow, lc.MaxAge)
	case lc.Stream == "" || strings.ContainsAny(lc.Stream, ". *>/\\") || !printable(lc.Stream):
		return lc, configErr("GATEWAY_EVENTS_STREAM", "%q is not a stream name (no dots, spaces, wildcards or slashes)", lc.Stream)
	case !subjectPrefix(lc.Subject):
		return lc, configErr("GATEWAY_EVENTS_SUBJECT", "%q is not a subject prefix such as upvest.events", lc.Subject)
	}
	return lc, nil
}

// LogOptions are the event log's options for its Watch streams. Errors
// name the setting at fault.
func (c Config) LogOptions() ([]events.LogOption, error) {
	catchUps, err := strconv.Atoi(c.StreamsMaxCatchUps)
	if err != nil || catchUps < 1 || catchUps > maxCatchUps {
		return nil, configErr("GATEWAY_STREAMS_MAX_CATCHUPS", "%q is not a number from 1 to %d", c.StreamsMaxCatchUps, maxCatchUps)
	}
	recent, err := strconv.Atoi(c.StreamsRecentEvents)
	if err != nil || recent < 0 || recent > maxRecentEvents {
		return nil, configErr("GATEWAY_STREAMS_RECENT_EVENTS", "%q is not a number from 0 to %d", c.StreamsRecentEvents, maxRecentEvents)
	}
	return []events.LogOption{events.WithCatchUps(catchUps), events.WithRecentEvents(recent)}, nil
}

// Bounds of the stream settings: each catch-up is a JetStream consumer
// (NATS allows 1,000 per stream by default), and each recent event about a
// kilobyte of memory.
const (
	maxCatchUps     = 500
	maxRecentEvents = 1_000_000
)

func positiveDuration(env, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, configErr(env, "%q is not a positive duration such as 24h or 90m", v)
	}
	return d, nil
}

// WebhookConfig is the webhook receiver's part of the configuration.
type WebhookConfig struct {
	IDs             []string // our webhook subscriptions
	MaxBody         int64
	MaxSignatureAge time.Duration
	Limits          webhook.RateLimits
}

// maxWebhookBody bounds GATEWAY_WEBHOOK_MAX_BODY: a delivery is held in
// memory while it is verified.
const maxWebhookBody = 64 << 20

// WebhookConfig checks and converts the GATEWAY_WEBHOOK_* settings.
func (c Config) WebhookConfig() (WebhookConfig, error) {
	var wc WebhookConfig
	var err error
	if wc.IDs, err = webhook.ParseWebhookIDs(c.WebhookIDs); err != nil {
		return wc, configErr("GATEWAY_WEBHOOK_IDS", "%v: it must list UUIDs separated by commas", err)
	}
	if wc.MaxBody, err = parseBytes("GATEWAY_WEBHOOK_MAX_BODY", c.WebhookMaxBody, "2097152 or 2MiB"); err != nil {
		return wc, err
	}
	if wc.MaxBody > maxWebhookBody {
		return wc, configErr("GATEWAY_WEBHOOK_MAX_BODY", "%q is more than 64MiB", c.WebhookMaxBody)
	}
	window, err := positiveDuration("GATEWAY_EVENTS_DUPLICATE_WINDOW", c.EventsDuplicateWindow)
	if err != nil {
		return wc, err
	}
	wc.MaxSignatureAge = window
	if c.WebhookMaxSignatureAge != "" {
		if wc.MaxSignatureAge, err = positiveDuration("GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE", c.WebhookMaxSignatureAge); err != nil {
			return wc, err
		}
		if wc.MaxSignatureAge > window {
			// Beyond the window a replayed delivery would store its events again.
			return wc, configErr("GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE", "%s is longer than GATEWAY_EVENTS_DUPLICATE_WINDOW %s", wc.MaxSignatureAge, window)
		}
	}
	if wc.Limits.PerSource, err = positiveRate("GATEWAY_WEBHOOK_SOURCE_RATE", c.WebhookSourceRate); err != nil {
		return wc, err
	}
	if wc.Limits.SourceBurst, err = positiveCount("GATEWAY_WEBHOOK_SOURCE_BURST", c.WebhookSourceBurst); err != nil {
		return wc, err
	}
	if wc.Limits.Global, err = positiveRate("GATEWAY_WEBHOOK_GLOBAL_RATE", c.WebhookGlobalRate); err != nil {
		return wc, err
	}
	if wc.Limits.GlobalBurst, err = positiveCount("GATEWAY_WEBHOOK_GLOBAL_BURST", c.WebhookGlobalBurst); err != nil {
		return wc, err
	}
	return wc, nil
}

// Registration is the webhook subscription the gateway registers at
// start-up (GATEWAY_WEBHOOK_PUBLIC_URL), and whether it registers one: its
// public URL, the categories it serves, and deliveries no larger than the
// receiver takes (GATEWAY_WEBHOOK_MAX_BODY, within Upvest's 1 MiB).
func (c Config) Registration() (registration.Subscription, bool, error) {
	if c.WebhookPublicURL == "" {
		return registration.Subscription{}, false, nil
	}
	wc, err := c.WebhookConfig()
	if err != nil {
		return registration.Subscription{}, false, err
	}
	insecure, err := c.AllowInsecureHTTP()
	if err != nil {
		return registration.Subscription{}, false, err
	}
	if wc.MaxBody < registration.MinPackageSize {
		return registration.Subscription{}, false, configErr("GATEWAY_WEBHOOK_MAX_BODY", "%q is below the %d bytes a subscription's deliveries may be (GATEWAY_WEBHOOK_PUBLIC_URL registers one)",
			c.WebhookMaxBody, registration.MinPackageSize)
	}
	sub := registration.Subscription{URL: c.WebhookPublicURL, MaxPackageSize: int(min(wc.MaxBody, registration.MaxPackageSize))}
	if err := checkPublicURL(sub, insecure); err != nil {
		return registration.Subscription{}, false, err
	}
	return sub, true, nil
}

// checkPublicURL accepts an https URL Upvest can be given, or a plain http
// one on loopback or with UPVEST_INSECURE_HTTP (a simulator on a private
// network): events carry account and payment data.
func checkPublicURL(sub registration.Subscription, insecureHTTP bool) error {
	if err := sub.Check(); err != nil {
		// Check names the URL's problem as "the URL ...".
		return configErr("GATEWAY_WEBHOOK_PUBLIC_URL", "%s", strings.TrimPrefix(err.Error(), "the URL "))
	}
	u, _ := url.Parse(sub.URL) // parsed by Check
	if u.Scheme == "http" && !isLoopback(u.Hostname()) && !insecureHTTP {
		return configErr("GATEWAY_WEBHOOK_PUBLIC_URL", "%q must use https: Upvest's deliveries carry account and payment data "+
			"(plain http only for a simulator on a private network, with UPVEST_INSECURE_HTTP=true)", sub.URL)
	}
	return nil
}

// positiveRate reads a rate per second such as 10 or 0.5.
func positiveRate(env, v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || f > 1e6 {
		return 0, configErr(env, "%q is not a positive number of verifications per second, such as 10 or 0.5", v)
	}
	return f, nil
}

// positiveCount reads a whole number from 1 to a million.
func positiveCount(env, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1e6 {
		return 0, configErr(env, "%q is not a whole number from 1 to 1000000", v)
	}
	return n, nil
}

// parseBytes reads a size such as 1073741824 or 1GiB; example is shown in
// the error.
func parseBytes(env, v, example string) (int64, error) {
	num, unit := v, int64(1)
	for i, suffix := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			num, unit = strings.TrimSpace(n), int64(1)<<(10*(i+1))
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return 0, configErr(env, "%q is not a positive size such as %s", v, example)
	}
	return n * unit, nil
}

// bucketName accepts what JetStream accepts as a key-value bucket name.
func bucketName(b string) bool {
	if b == "" {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// subjectPrefix accepts dot-separated literal NATS subject tokens.
func subjectPrefix(p string) bool {
	if p == "" || !printable(p) {
		return false
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> ") {
			return false
		}
	}
	return true
}

func checkBaseURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return configErr("UPVEST_BASE_URL", "is not a valid URL")
	case u.User != nil:
		// Not echoed: the user info may hold a password.
		return configErr("UPVEST_BASE_URL", "must not contain user info")
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.Opaque != "":
		return configErr("UPVEST_BASE_URL", "%q is not an absolute https URL", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return configErr("UPVEST_BASE_URL", "%q must not have a query or fragment", raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && !insecure:
		return configErr("UPVEST_BASE_URL", "%q must use https: plain http would expose the client secret", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkAddr accepts host:port with a numeric port (0 picks a free one) and
// an IP, a host name or nothing (every interface) as the host.
func checkAddr(env, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return configErr(env, "%q is not a host:port address", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return configErr(env, "%q: the port must be a number from 0 to 65535", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !isHostName(host) {
		return configErr(env, "%q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

func isHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// checkNATSURL accepts an empty value (embedded) or comma-separated NATS
// URLs. Errors never quote a URL: it may carry a password or token.
func checkNATSURL(v string) error {
	if v == "" {
		return nil
	}
	for i, raw := range strings.Split(v, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.Opaque != "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
			return configErr("GATEWAY_NATS_URL", "entry %d is not a URL of the form nats://host:port", i+1)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return configErr("GATEWAY_NATS_URL", "entry %d: the scheme must be nats, tls, ws or wss", i+1)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return configErr("GATEWAY_NATS_URL", "entry %d: the port must be a number from 1 to 65535", i+1)
			}
		}
	}
	return nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func keyIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// String shows the configuration with every secret replaced, so it can be
// printed or logged. With --simulate the UPVEST_* values are not used and
// not shown.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("gateway config:")
	for _, s := range c.shownSettings() {
		fmt.Fprintf(&b, " %s=%s", s.env, strconv.Quote(c.shown(s)))
	}
	fmt.Fprintf(&b, " simulate=%t tracing=%s", c.Simulate, c.Tracing)
	return b.String()
}

// GoString keeps secrets out of %#v.
func (c Config) GoString() string { return c.String() }

// LogValue keeps secrets out of structured logs.
func (c Config) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, s := range c.shownSettings() {
		attrs = append(attrs, slog.String(strings.ToLower(s.env), c.shown(s)))
	}
	attrs = append(attrs, slog.Bool("simulate", c.Simulate), slog.String("tracing", c.Tracing.String()))
	return slog.GroupValue(attrs...)
}

func (c Config) shownSettings() []setting {
	var out []setting
	for _, s := range settings {
		if !c.Simulate || !strings.HasPrefix(s.env, "UPVEST_") {
			out = append(out, s)
		}
	}
	return out
}

func (c Config) shown(s setting) string {
	v := *s.field(&c)
	switch {
	case s.env == "GATEWAY_NATS_URL" && v != "":
		return natsHosts(v)
	case !s.secret:
		return v
	case v == "":
		return "<unset>"
	default:
		return "<redacted>"
	}
}

// natsHosts is the NATS URL list without credentials, for display.
func natsHosts(v string) string {
	var out []string
	for _, raw := range strings.Split(v, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			out = append(out, "<invalid>")
			continue
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return strings.Join(out, ",")
}
