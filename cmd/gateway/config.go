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
	"github.com/upvest-gateway/gateway/internal/webhook"
)

// Config is the gateway's configuration: environment variables, each
// overridden by the flag of the same meaning.
type Config struct {
	BaseURL              string
	ClientID             string
	ClientSecret         string // secret
	SigningKeyFile       string
	SigningKeyID         string
	SigningKeyPassphrase string // secret
	// InsecureHTTP allows a plain http UPVEST_BASE_URL on a host other than
	// loopback: only for a simulator on a private network (deploy/compose.yaml).
	InsecureHTTP string
	GRPCAddr     string
	HTTPAddr     string
	DataDir      string
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
	Simulate               bool
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
	{env: "UPVEST_SIGNING_KEY_FILE", flag: "upvest-signing-key-file", usage: "PEM private key for request signatures",
		field: func(c *Config) *string { return &c.SigningKeyFile }},
	{env: "UPVEST_SIGNING_KEY_ID", flag: "upvest-signing-key-id", usage: "the id Upvest knows the signing key by",
		field: func(c *Config) *string { return &c.SigningKeyID }},
	{env: "UPVEST_SIGNING_KEY_PASSPHRASE", flag: "upvest-signing-key-passphrase", secret: true, usage: "passphrase of a protected signing key (prefer the variable)",
		field: func(c *Config) *string { return &c.SigningKeyPassphrase }},
	{env: "UPVEST_INSECURE_HTTP", flag: "upvest-insecure-http", def: "false", usage: "allow a plain http UPVEST_BASE_URL on a non-loopback host, e.g. a simulator on a private network (never for Upvest)",
		field: func(c *Config) *string { return &c.InsecureHTTP }},
	{env: "GATEWAY_GRPC_ADDR", flag: "grpc-addr", def: "127.0.0.1:9090", usage: "gRPC listen address",
		field: func(c *Config) *string { return &c.GRPCAddr }},
	{env: "GATEWAY_HTTP_ADDR", flag: "http-addr", def: "127.0.0.1:8080", usage: "HTTP listen address (REST, /openapi.json, /healthz)",
		field: func(c *Config) *string { return &c.HTTPAddr }},
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
	{env: "GATEWAY_EVENTS_SYNC_ALWAYS", flag: "events-sync-always", def: "true", usage: "embedded log: fsync every event before Upvest's delivery is acknowledged, so acknowledged events survive a power loss",
		field: func(c *Config) *string { return &c.EventsSyncAlways }},
	{env: "GATEWAY_EVENTS_DUPLICATE_WINDOW", flag: "events-duplicate-window", def: "24h", usage: "how long an event id is remembered to drop Upvest's repeated deliveries (at most the max age)",
		field: func(c *Config) *string { return &c.EventsDuplicateWindow }},
	{env: "GATEWAY_WEBHOOK_IDS", flag: "webhook-ids", usage: "ids of this gateway's Upvest webhook subscriptions (UUIDs, comma-separated): a delivery for another subscription is refused; unset, deliveries are bound by upvest-client-id alone where signed",
		field: func(c *Config) *string { return &c.WebhookIDs }},
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
	var cfg Config
	fs := newFlagSet(&cfg, io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		// The flag package names only the flag, never its value.
		return Config{}, &ConfigError{Reason: strings.Replace(err.Error(), "provided but not defined: -", "provided but not defined: --", 1)}
	}
	if fs.NArg() > 0 {
		// Not echoed: a misplaced argument may well be a secret.
		return Config{}, &ConfigError{Reason: fmt.Sprintf("unexpected argument #%d: every setting is a --flag=value or an environment variable", 1+len(args)-fs.NArg())}
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
	return cfg, cfg.validate()
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
		case c.ClientSecret == "":
			return configErr("UPVEST_CLIENT_SECRET", "is required")
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
	if err := checkAddr("GATEWAY_GRPC_ADDR", c.GRPCAddr); err != nil {
		return err
	}
	if err := checkAddr("GATEWAY_HTTP_ADDR", c.HTTPAddr); err != nil {
		return err
	}
	if c.GRPCAddr == c.HTTPAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
		return configErr("GATEWAY_HTTP_ADDR", "%q is also GATEWAY_GRPC_ADDR", c.HTTPAddr)
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
	if _, err = c.LogConfig(); err != nil {
		return err
	}
	_, err = c.WebhookConfig()
	return err
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
	if bc.SyncAlways, err = strconv.ParseBool(c.EventsSyncAlways); err != nil {
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
	fmt.Fprintf(&b, " simulate=%t", c.Simulate)
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
	attrs = append(attrs, slog.Bool("simulate", c.Simulate))
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
