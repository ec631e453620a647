package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/broker"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/idempotency"
	"github.com/upvest-gateway/gateway/internal/tracing"
	"github.com/upvest-gateway/gateway/internal/webhook"
)

const (
	// Secrets in these tests start with a marker no message template holds,
	// so finding it in output means a secret leaked.
	marker     = "ZQ9X"
	testSecret = marker + "-client-secret-value"
	testPass   = marker + "-passphrase"
)

func validEnv() map[string]string {
	return map[string]string{
		"UPVEST_CLIENT_ID":              "c5a1e1f4-6a8e-4a43-9d0a-1f2e3d4c5b6a",
		"UPVEST_CLIENT_SECRET":          testSecret,
		"UPVEST_SIGNING_KEY_FILE":       "/etc/upvest/key.pem",
		"UPVEST_SIGNING_KEY_ID":         "key-1",
		"UPVEST_SIGNING_KEY_PASSPHRASE": testPass,
	}
}

func with(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig(validEnv(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		BaseURL: "https://sandbox.upvest.co", ClientID: "c5a1e1f4-6a8e-4a43-9d0a-1f2e3d4c5b6a", ClientSecret: testSecret,
		SigningKeyFile: "/etc/upvest/key.pem", SigningKeyID: "key-1", SigningKeyPassphrase: testPass,
		GRPCAddr: "127.0.0.1:9090", HTTPAddr: "127.0.0.1:8080", DataDir: "./data",
		EventsStream: "UPVEST_EVENTS", EventsSubject: "upvest.events", EventsMaxAge: "168h", EventsMaxBytes: "1GiB",
		EventsDuplicateWindow: "24h", NATSReplicas: "auto", InsecureHTTP: "false", EventsSyncAlways: "true", AllowMissingRequestID: "false", CORSAllowCredentials: "false", IdempotencyRetention: "24h", SigningKeyInsecurePermissions: "false", JWTIdentityClaim: "sub", InsecureAllowUnauthenticated: "false",
		IdempotencyBucket: "UPVEST_GATEWAY_IDEMPOTENCY", StatusBucket: "UPVEST_GATEWAY_STATUS",
		MaxConns: "4096", MaxConnsPerIP: "512", BodyTimeout: "10s", MaxStreams: "20000", GRPCMaxConnectionAge: "1h",
		AdminAddr: "127.0.0.1:9091", ShutdownDelay: "5s", DrainTimeout: "20s", LogLevel: "info",
		WebhookMaxBody: "2MiB", WebhookSourceRate: "10", WebhookSourceBurst: "20", WebhookGlobalRate: "50", WebhookGlobalBurst: "100",
		StreamsMaxCatchUps: "16", StreamsRecentEvents: "4096",
	}
	if cfg != want {
		t.Errorf("ParseConfig = %+v, want %+v", cfg, want)
	}
}

func TestParseConfigOverrides(t *testing.T) {
	env := with(validEnv(), "GATEWAY_GRPC_ADDR", "0.0.0.0:1", "UPVEST_BASE_URL", "https://api.upvest.co",
		"UPVEST_CLIENT_SECRET", testSecret+"\n", "GATEWAY_NATS_URL", "nats://a:4222, nats://b:4222")
	cfg, err := ParseConfig(env, []string{"--grpc-addr", "127.0.0.1:7000", "--http-addr=:7001", "-data-dir", "/var/lib/gw", "--insecure-allow-unauthenticated=true"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != "127.0.0.1:7000" || cfg.HTTPAddr != ":7001" || cfg.DataDir != "/var/lib/gw" || cfg.BaseURL != "https://api.upvest.co" {
		t.Errorf("flags did not win over the environment: %+v", cfg)
	}
	if cfg.ClientSecret != testSecret {
		t.Errorf("secret = %q, want the trailing line break trimmed", cfg.ClientSecret)
	}
	if cfg.NATSURL == "" {
		t.Error("NATS URL lost")
	}
	// An explicitly empty flag wins too.
	if _, err := ParseConfig(validEnv(), []string{"--upvest-client-id="}); err == nil || !strings.Contains(err.Error(), "UPVEST_CLIENT_ID is required") {
		t.Errorf("--upvest-client-id= : %v", err)
	}
}

// TestParseConfigInsecureHTTP: a plain http base URL on another host is
// refused unless the operator opts in, as for a simulator on a private network.
func TestParseConfigInsecureHTTP(t *testing.T) {
	env := with(validEnv(), "UPVEST_BASE_URL", "http://upvest-sim:8090")
	if _, err := ParseConfig(env, nil); err == nil || !strings.Contains(err.Error(), "must use https") {
		t.Fatalf("without UPVEST_INSECURE_HTTP: %v, want a refusal", err)
	}
	cfg, err := ParseConfig(with(env, "UPVEST_INSECURE_HTTP", "true"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := cfg.AllowInsecureHTTP(); !ok {
		t.Error("AllowInsecureHTTP = false, want true")
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the whole message, or a prefix ending in "…"
	}{
		{"missing client id", with(validEnv(), "UPVEST_CLIENT_ID", ""), nil, "UPVEST_CLIENT_ID is required (or --upvest-client-id)"},
		{"missing secret", with(validEnv(), "UPVEST_CLIENT_SECRET", ""), nil, "UPVEST_CLIENT_SECRET is required, or UPVEST_CLIENT_SECRET_FILE (or --upvest-client-secret)"},
		{"missing key file", with(validEnv(), "UPVEST_SIGNING_KEY_FILE", ""), nil, "UPVEST_SIGNING_KEY_FILE is required (or --upvest-signing-key-file)"},
		{"missing key id", with(validEnv(), "UPVEST_SIGNING_KEY_ID", ""), nil, "UPVEST_SIGNING_KEY_ID is required (or --upvest-signing-key-id)"},
		{"nothing at all", map[string]string{}, nil, "UPVEST_CLIENT_ID is required (or --upvest-client-id)"},
		{"client id not a uuid", with(validEnv(), "UPVEST_CLIENT_ID", "tenant-1"), nil, `UPVEST_CLIENT_ID "tenant-1" is not a UUID (or --upvest-client-id)`},
		{"secret with control chars", with(validEnv(), "UPVEST_CLIENT_SECRET", marker+"\x00x"), nil, "UPVEST_CLIENT_SECRET contains control characters (or --upvest-client-secret)"},
		{"key id with quote", with(validEnv(), "UPVEST_SIGNING_KEY_ID", `a"b`), nil, "UPVEST_SIGNING_KEY_ID must be printable…"},
		{"grpc addr without port", with(validEnv(), "GATEWAY_GRPC_ADDR", "localhost"), nil, `GATEWAY_GRPC_ADDR "localhost" is not a host:port address (or --grpc-addr)`},
		{"grpc addr port too big", validEnv(), []string{"--grpc-addr", "127.0.0.1:99999"}, `GATEWAY_GRPC_ADDR "127.0.0.1:99999": the port must be…`},
		{"http addr named port", with(validEnv(), "GATEWAY_HTTP_ADDR", "127.0.0.1:http"), nil, `GATEWAY_HTTP_ADDR "127.0.0.1:http": the port must be…`},
		{"http addr bad host", with(validEnv(), "GATEWAY_HTTP_ADDR", "bad_host!:80"), nil, `GATEWAY_HTTP_ADDR "bad_host!:80": "bad_host!" is neither…`},
		{"same addresses", with(validEnv(), "GATEWAY_HTTP_ADDR", "127.0.0.1:9090"), nil, `GATEWAY_HTTP_ADDR "127.0.0.1:9090" is also GATEWAY_GRPC_ADDR…`},
		{"base url ftp", with(validEnv(), "UPVEST_BASE_URL", "ftp://upvest.co"), nil, `UPVEST_BASE_URL "ftp://upvest.co" is not an absolute https URL…`},
		{"base url relative", with(validEnv(), "UPVEST_BASE_URL", "sandbox.upvest.co"), nil, `UPVEST_BASE_URL "sandbox.upvest.co" is not an absolute https URL…`},
		{"base url plain http", with(validEnv(), "UPVEST_BASE_URL", "http://sandbox.upvest.co"), nil, `UPVEST_BASE_URL "http://sandbox.upvest.co" must use https…`},
		{"insecure not a bool", with(validEnv(), "UPVEST_INSECURE_HTTP", "yes please"), nil, `UPVEST_INSECURE_HTTP "yes please" is not true or false (or --upvest-insecure-http)`},
		{"base url query", with(validEnv(), "UPVEST_BASE_URL", "https://x.io/?a=1"), nil, `UPVEST_BASE_URL "https://x.io/?a=1" must not have a query…`},
		{"base url credentials", with(validEnv(), "UPVEST_BASE_URL", "https://u:"+marker+"pw@x.io"), nil, "UPVEST_BASE_URL must not contain user info (or --upvest-base-url)"},
		{"base url unparsable", with(validEnv(), "UPVEST_BASE_URL", "https://x.io/%zz"), nil, "UPVEST_BASE_URL is not a valid URL (or --upvest-base-url)"},
		{"empty data dir", nil, []string{"--simulate", "--data-dir", ""}, "GATEWAY_DATA_DIR must not be empty (or --data-dir)"},
		{"nats scheme", with(validEnv(), "GATEWAY_NATS_URL", "http://u:"+marker+"@nats:4222"), nil, "GATEWAY_NATS_URL entry 1: the scheme must be…"},
		{"nats no host", with(validEnv(), "GATEWAY_NATS_URL", "nats://a:4222,nats4222"), nil, "GATEWAY_NATS_URL entry 2 is not a URL…"},
		{"nats port", with(validEnv(), "GATEWAY_NATS_URL", "nats://:"+marker+"@n:99999"), nil, "GATEWAY_NATS_URL entry 1: the port must be…"},
		{"max age", with(validEnv(), "GATEWAY_EVENTS_MAX_AGE", "7d"), nil, `GATEWAY_EVENTS_MAX_AGE "7d" is not a positive duration such as 24h or 90m (or --events-max-age)`},
		{"max age negative", validEnv(), []string{"--events-max-age=-1h"}, `GATEWAY_EVENTS_MAX_AGE "-1h" is not a positive duration…`},
		{"duplicate window", with(validEnv(), "GATEWAY_EVENTS_DUPLICATE_WINDOW", "0s"), nil, `GATEWAY_EVENTS_DUPLICATE_WINDOW "0s" is not a positive duration…`},
		{"duplicate window longer than max age", with(validEnv(), "GATEWAY_EVENTS_MAX_AGE", "1h"), nil, "GATEWAY_EVENTS_DUPLICATE_WINDOW 24h0m0s is longer than GATEWAY_EVENTS_MAX_AGE 1h0m0s (or --events-duplicate-window)"},
		{"max bytes", with(validEnv(), "GATEWAY_EVENTS_MAX_BYTES", "1GB"), nil, `GATEWAY_EVENTS_MAX_BYTES "1GB" is not a positive size such as 1073741824 or 1GiB (or --events-max-bytes)`},
		{"max bytes overflow", with(validEnv(), "GATEWAY_EVENTS_MAX_BYTES", "9999999999TiB"), nil, `GATEWAY_EVENTS_MAX_BYTES "9999999999TiB" is not…`},
		{"replicas", with(validEnv(), "GATEWAY_NATS_REPLICAS", "7", "GATEWAY_NATS_URL", "nats://n:4222"), nil, `GATEWAY_NATS_REPLICAS "7" is neither auto nor a number from 1 to 5 (or --nats-replicas)`},
		{"replicas embedded", with(validEnv(), "GATEWAY_NATS_REPLICAS", "3"), nil, "GATEWAY_NATS_REPLICAS must be 1 or auto with the embedded event log (GATEWAY_NATS_URL unset) (or --nats-replicas)"},
		{"webhook ids", with(validEnv(), "GATEWAY_WEBHOOK_IDS", "9df39835-be87-4243-9018-f2500b39cee6,"+marker), nil, "GATEWAY_WEBHOOK_IDS entry 2 is not a UUID: it must list UUIDs separated by commas (or --webhook-ids)"},
		{"webhook max body", with(validEnv(), "GATEWAY_WEBHOOK_MAX_BODY", "2MB"), nil, `GATEWAY_WEBHOOK_MAX_BODY "2MB" is not a positive size such as 2097152 or 2MiB (or --webhook-max-body)`},
		{"webhook max body too large", with(validEnv(), "GATEWAY_WEBHOOK_MAX_BODY", "1GiB"), nil, `GATEWAY_WEBHOOK_MAX_BODY "1GiB" is more than 64MiB…`},
		{"signature age", with(validEnv(), "GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE", "5"), nil, `GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE "5" is not a positive duration…`},
		{"signature age beyond the duplicate window", with(validEnv(), "GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE", "48h"), nil, "GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE 48h0m0s is longer than GATEWAY_EVENTS_DUPLICATE_WINDOW 24h0m0s (or --webhook-max-signature-age)"},
		{"source rate", with(validEnv(), "GATEWAY_WEBHOOK_SOURCE_RATE", "0"), nil, `GATEWAY_WEBHOOK_SOURCE_RATE "0" is not a positive number…`},
		{"global rate NaN", with(validEnv(), "GATEWAY_WEBHOOK_GLOBAL_RATE", "NaN"), nil, `GATEWAY_WEBHOOK_GLOBAL_RATE "NaN" is not a positive number…`},
		{"source burst", with(validEnv(), "GATEWAY_WEBHOOK_SOURCE_BURST", "1.5"), nil, `GATEWAY_WEBHOOK_SOURCE_BURST "1.5" is not a whole number from 1 to 1000000 (or --webhook-source-burst)`},
		{"global burst", with(validEnv(), "GATEWAY_WEBHOOK_GLOBAL_BURST", "-3"), nil, `GATEWAY_WEBHOOK_GLOBAL_BURST "-3" is not a whole number…`},
		{"sync always", with(validEnv(), "GATEWAY_EVENTS_SYNC_ALWAYS", "sometimes"), nil, `GATEWAY_EVENTS_SYNC_ALWAYS "sometimes" is not true or false (or --events-sync-always)`},
		{"no catch-ups", with(validEnv(), "GATEWAY_STREAMS_MAX_CATCHUPS", "0"), nil, `GATEWAY_STREAMS_MAX_CATCHUPS "0" is not a number from 1 to 500 (or --streams-max-catchups)`},
		{"too many catch-ups", validEnv(), []string{"--streams-max-catchups=501"}, `GATEWAY_STREAMS_MAX_CATCHUPS "501" is not a number from 1 to 500 (or --streams-max-catchups)`},
		{"recent events negative", with(validEnv(), "GATEWAY_STREAMS_RECENT_EVENTS", "-1"), nil, `GATEWAY_STREAMS_RECENT_EVENTS "-1" is not a number from 0 to 1000000 (or --streams-recent-events)`},
		{"recent events not a number", with(validEnv(), "GATEWAY_STREAMS_RECENT_EVENTS", "many"), nil, `GATEWAY_STREAMS_RECENT_EVENTS "many" is not a number from 0 to 1000000 (or --streams-recent-events)`},
		{"stream name", with(validEnv(), "GATEWAY_EVENTS_STREAM", "a.b"), nil, `GATEWAY_EVENTS_STREAM "a.b" is not a stream name…`},
		{"subject wildcard", with(validEnv(), "GATEWAY_EVENTS_SUBJECT", "upvest.*"), nil, `GATEWAY_EVENTS_SUBJECT "upvest.*" is not a subject prefix…`},
		{"subject empty token", with(validEnv(), "GATEWAY_EVENTS_SUBJECT", "upvest..events"), nil, `GATEWAY_EVENTS_SUBJECT "upvest..events" is not…`},
		{"public url relative", with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "hooks.example.com/webhooks/upvest"), nil, `GATEWAY_WEBHOOK_PUBLIC_URL "hooks.example.com/webhooks/upvest" is not an absolute https URL (or --webhook-public-url)`},
		{"public url plain http", with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "http://hooks.example.com/webhooks/upvest"), nil, `GATEWAY_WEBHOOK_PUBLIC_URL "http://hooks.example.com/webhooks/upvest" must use https…`},
		{"public url credentials", with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "https://u:"+marker+"@hooks.example.com/"), nil, "GATEWAY_WEBHOOK_PUBLIC_URL must not contain user info (or --webhook-public-url)"},
		{"public url fragment", validEnv(), []string{"--webhook-public-url=https://hooks.example.com/x#y"}, `GATEWAY_WEBHOOK_PUBLIC_URL "https://hooks.example.com/x#y" must not have a fragment…`},
		{"public url with a body cap below a package", with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "https://hooks.example.com/webhooks/upvest", "GATEWAY_WEBHOOK_MAX_BODY", "50"), nil, `GATEWAY_WEBHOOK_MAX_BODY "50" is below the 100 bytes…`},
		{"webhook addr", with(validEnv(), "GATEWAY_WEBHOOK_ADDR", "8443"), nil, `GATEWAY_WEBHOOK_ADDR "8443" is not a host:port address (or --webhook-addr)`},
		{"webhook addr is the http addr", with(validEnv(), "GATEWAY_WEBHOOK_ADDR", "127.0.0.1:8080"), nil, `GATEWAY_WEBHOOK_ADDR "127.0.0.1:8080" is also GATEWAY_HTTP_ADDR or GATEWAY_GRPC_ADDR…`},
		{"idempotency bucket", with(validEnv(), "GATEWAY_IDEMPOTENCY_BUCKET", "a.b"), nil, `GATEWAY_IDEMPOTENCY_BUCKET "a.b" is not a bucket name (letters, digits, - and _) (or --idempotency-bucket)`},
		{"status bucket", with(validEnv(), "GATEWAY_STATUS_BUCKET", "status*"), nil, `GATEWAY_STATUS_BUCKET "status*" is not a bucket name (letters, digits, - and _) (or --status-bucket)`},
		{"idempotency retention", with(validEnv(), "GATEWAY_IDEMPOTENCY_RETENTION", "1 day"), nil, `GATEWAY_IDEMPOTENCY_RETENTION "1 day" is not a positive duration…`},
		{"missing request id", with(validEnv(), "GATEWAY_ALLOW_MISSING_REQUEST_ID", "sure"), nil, `GATEWAY_ALLOW_MISSING_REQUEST_ID "sure" is not true or false…`},
		{"max connections", with(validEnv(), "GATEWAY_MAX_CONNECTIONS", "0"), nil, `GATEWAY_MAX_CONNECTIONS "0" is not a whole number of at least 1…`},
		{"max connections per ip", with(validEnv(), "GATEWAY_MAX_CONNECTIONS_PER_IP", "-1"), nil, `GATEWAY_MAX_CONNECTIONS_PER_IP "-1" is not a whole number of at least 0…`},
		{"max streams", with(validEnv(), "GATEWAY_MAX_STREAMS", "many"), nil, `GATEWAY_MAX_STREAMS "many" is not…`},
		{"body timeout", with(validEnv(), "GATEWAY_HTTP_BODY_TIMEOUT", "10"), nil, `GATEWAY_HTTP_BODY_TIMEOUT "10" is not a positive duration…`},
		{"connection age", with(validEnv(), "GATEWAY_GRPC_MAX_CONNECTION_AGE", "0s"), nil, `GATEWAY_GRPC_MAX_CONNECTION_AGE "0s" is not a positive duration…`},
		{"cert without key", with(validEnv(), "GATEWAY_TLS_CERT_FILE", "c.pem"), nil, "GATEWAY_TLS_KEY_FILE is required with GATEWAY_TLS_CERT_FILE…"},
		{"key without cert", with(validEnv(), "GATEWAY_TLS_KEY_FILE", "k.pem"), nil, "GATEWAY_TLS_CERT_FILE is required with GATEWAY_TLS_KEY_FILE…"},
		{"client CA without TLS", with(validEnv(), "GATEWAY_TLS_CLIENT_CA_FILE", "ca.pem"), nil, "GATEWAY_TLS_CLIENT_CA_FILE needs GATEWAY_TLS_CERT_FILE…"},
		{"mutual TLS without policy", with(validEnv(), "GATEWAY_TLS_CERT_FILE", "c.pem", "GATEWAY_TLS_KEY_FILE", "k.pem", "GATEWAY_TLS_CLIENT_CA_FILE", "ca.pem"), nil, "GATEWAY_POLICY_FILE is required when callers are authenticated…"},
		{"two JWKS", with(validEnv(), "GATEWAY_JWT_JWKS_FILE", "j.json", "GATEWAY_JWT_JWKS_URL", "https://idp/jwks"), nil, "GATEWAY_JWT_JWKS_URL and GATEWAY_JWT_JWKS_FILE are both set…"},
		{"JWKS without issuer", with(validEnv(), "GATEWAY_JWT_JWKS_URL", "https://idp/jwks", "GATEWAY_POLICY_FILE", "p.yaml"), nil, "GATEWAY_JWT_ISSUER is required with a JWKS…"},
		{"JWKS without audience", with(validEnv(), "GATEWAY_JWT_JWKS_URL", "https://idp/jwks", "GATEWAY_JWT_ISSUER", "https://idp", "GATEWAY_POLICY_FILE", "p.yaml"), nil, "GATEWAY_JWT_AUDIENCE is required with a JWKS…"},
		{"insecure and authenticated", with(validEnv(), "GATEWAY_TLS_CERT_FILE", "c.pem", "GATEWAY_TLS_KEY_FILE", "k.pem", "GATEWAY_TLS_CLIENT_CA_FILE", "ca.pem", "GATEWAY_POLICY_FILE", "p.yaml", "GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED", "true"), nil, "GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED contradicts…"},
		{"unauthenticated beyond loopback", with(validEnv(), "GATEWAY_GRPC_ADDR", "0.0.0.0:9090"), nil, `GATEWAY_GRPC_ADDR "0.0.0.0:9090" is not a loopback address, and callers are not authenticated…`},
		{"unauthenticated on every interface", with(validEnv(), "GATEWAY_HTTP_ADDR", ":8080"), nil, `GATEWAY_HTTP_ADDR ":8080" is not a loopback address…`},
		{"insecure not a bool", with(validEnv(), "GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED", "yes"), nil, `GATEWAY_INSECURE_ALLOW_UNAUTHENTICATED "yes" is not true or false…`},
		{"admin addr", with(validEnv(), "GATEWAY_ADMIN_ADDR", "9091"), nil, `GATEWAY_ADMIN_ADDR "9091" is not a host:port address (or --admin-addr)`},
		{"admin addr is the http addr", with(validEnv(), "GATEWAY_ADMIN_ADDR", "127.0.0.1:8080"), nil, `GATEWAY_ADMIN_ADDR "127.0.0.1:8080" is also the address of another listener (or --admin-addr)`},
		{"shutdown delay", with(validEnv(), "GATEWAY_SHUTDOWN_DELAY", "5"), nil, `GATEWAY_SHUTDOWN_DELAY "5" is not a duration from 0s to 1h, such as 5s (or --shutdown-delay)`},
		{"shutdown delay negative", validEnv(), []string{"--shutdown-delay=-1s"}, `GATEWAY_SHUTDOWN_DELAY "-1s" is not…`},
		{"drain timeout", with(validEnv(), "GATEWAY_DRAIN_TIMEOUT", "0s"), nil, `GATEWAY_DRAIN_TIMEOUT "0s" is not a positive duration such as 24h or 90m (or --drain-timeout)`},
		{"log format", with(validEnv(), "GATEWAY_LOG_FORMAT", "logfmt"), nil, `GATEWAY_LOG_FORMAT "logfmt" is neither json nor text (or --log-format)`},
		{"log level", with(validEnv(), "GATEWAY_LOG_LEVEL", "verbose"), nil, `GATEWAY_LOG_LEVEL "verbose" is not one of debug, info, warn, error (or --log-level)`},
		{"OTEL exporter", with(validEnv(), "OTEL_TRACES_EXPORTER", "jaeger"), nil, `OTEL_TRACES_EXPORTER "jaeger" is not supported: otlp or none`},
		{"OTEL protocol", with(validEnv(), "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), nil,
			`OTEL_EXPORTER_OTLP_PROTOCOL "http/json" is not supported: grpc or http/protobuf`},
		{"unknown flag", validEnv(), []string{"--upvest-client-secrt=" + testSecret}, "flag provided but not defined: --upvest-client-secrt"},
		{"positional argument", validEnv(), []string{"--simulate", testSecret}, "unexpected argument #2…"},
		{"bad bool", validEnv(), []string{"--simulate=maybe"}, "invalid boolean value…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.env, tc.args)
			if err == nil {
				t.Fatal("ParseConfig succeeded")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %T, want *ConfigError", err)
			}
			got := err.Error()
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("error = %q, want it to start with %q", got, prefix)
				}
			} else if got != tc.want {
				t.Errorf("error = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, marker) || strings.Contains(got, "\n") {
				t.Errorf("error %q holds a secret or more than one line", got)
			}
		})
	}
}

func TestIdempotencyConfig(t *testing.T) {
	cfg, err := ParseConfig(with(validEnv(), "GATEWAY_NATS_URL", "nats://a:4222", "GATEWAY_NATS_REPLICAS", "3",
		"GATEWAY_IDEMPOTENCY_BUCKET", "GW_IDEM-1", "GATEWAY_IDEMPOTENCY_RETENTION", "36h"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := cfg.IdempotencyConfig()
	if want := (idempotency.Config{Bucket: "GW_IDEM-1", Retention: 36 * time.Hour, Replicas: 3}); err != nil || ic != want {
		t.Errorf("IdempotencyConfig = %+v, %v; want %+v", ic, err, want)
	}
}

func TestLogConfig(t *testing.T) {
	cfg, err := ParseConfig(with(validEnv(), "GATEWAY_NATS_URL", "nats://a:4222,nats://b:4222", "GATEWAY_NATS_REPLICAS", "3",
		"GATEWAY_EVENTS_MAX_AGE", "72h", "GATEWAY_EVENTS_MAX_BYTES", "512MiB", "GATEWAY_EVENTS_DUPLICATE_WINDOW", "2h",
		"GATEWAY_EVENTS_STREAM", "GW_EVENTS", "GATEWAY_EVENTS_SUBJECT", "gw.events", "GATEWAY_EVENTS_SYNC_ALWAYS", "false"), nil)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := cfg.LogConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := events.LogConfig{Stream: "GW_EVENTS", Subject: "gw.events",
		MaxAge: 72 * time.Hour, MaxBytes: 512 << 20, DuplicateWindow: 2 * time.Hour, Replicas: 3}
	if lc != want {
		t.Errorf("LogConfig = %+v, want %+v", lc, want)
	}
	bc, err := cfg.BrokerConfig()
	if want := (broker.Config{URL: "nats://a:4222,nats://b:4222", DataDir: "./data"}); err != nil || bc != want {
		t.Errorf("BrokerConfig = %+v, %v, want %+v", bc, err, want)
	}
	cfg, _ = ParseConfig(validEnv(), []string{"--events-max-bytes", "1073741824"})
	if lc, _ := cfg.LogConfig(); lc.MaxBytes != events.DefaultMaxBytes || lc.MaxAge != events.DefaultMaxAge ||
		lc.DuplicateWindow != events.DefaultDuplicateWindow || lc.Stream != events.DefaultStream || lc.Replicas != 0 {
		t.Errorf("defaults: %+v", lc)
	}
	if bc, _ := cfg.BrokerConfig(); !bc.GroupCommit || bc.SyncAlways {
		t.Errorf("broker defaults: %+v, want durable events by group commit", bc)
	}
}

func TestWebhookConfig(t *testing.T) {
	a, b := "9df39835-be87-4243-9018-f2500b39cee6", "1b097e06-8a14-4181-b72a-de0972a3c57b"
	cfg, err := ParseConfig(with(validEnv(), "GATEWAY_WEBHOOK_IDS", strings.ToUpper(a)+", "+b, "GATEWAY_WEBHOOK_MAX_BODY", "4MiB",
		"GATEWAY_WEBHOOK_MAX_SIGNATURE_AGE", "6h", "GATEWAY_WEBHOOK_SOURCE_RATE", "0.5", "GATEWAY_WEBHOOK_SOURCE_BURST", "3",
		"GATEWAY_WEBHOOK_GLOBAL_RATE", "20", "GATEWAY_WEBHOOK_GLOBAL_BURST", "40"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := cfg.WebhookConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := WebhookConfig{IDs: []string{a, b}, MaxBody: 4 << 20, MaxSignatureAge: 6 * time.Hour,
		Limits: webhook.RateLimits{PerSource: 0.5, SourceBurst: 3, Global: 20, GlobalBurst: 40}}
	if fmt.Sprint(wc) != fmt.Sprint(want) {
		t.Errorf("WebhookConfig = %+v, want %+v", wc, want)
	}
	// Defaults: the signature may be as old as the duplicate window, and
	// the body fits the largest max_package_size.
	cfg, _ = ParseConfig(with(validEnv(), "GATEWAY_EVENTS_DUPLICATE_WINDOW", "12h"), nil)
	wc, err = cfg.WebhookConfig()
	if err != nil || wc.MaxSignatureAge != 12*time.Hour || wc.MaxBody != webhook.DefaultMaxBody || len(wc.IDs) != 0 ||
		wc.Limits != webhook.DefaultRateLimits {
		t.Errorf("defaults: %+v, %v", wc, err)
	}
}

// TestOperationsConfig: the admin listener, the shutdown's delay and drain,
// the log's format and level, and tracing, from their settings.
func TestOperationsConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		admin   string
		life    Lifecycle
		logging Logging
		tracing tracing.Settings
	}{
		{"defaults", validEnv(), nil, "127.0.0.1:9091", Lifecycle{5 * time.Second, 20 * time.Second}, Logging{"json", slog.LevelInfo}, tracing.Settings{}},
		{"text with --simulate", nil, []string{"--simulate"}, "127.0.0.1:9091", Lifecycle{5 * time.Second, 20 * time.Second}, Logging{"text", slog.LevelInfo}, tracing.Settings{}},
		{"json with --simulate when asked", map[string]string{"GATEWAY_LOG_FORMAT": "JSON"}, []string{"--simulate"}, "127.0.0.1:9091",
			Lifecycle{5 * time.Second, 20 * time.Second}, Logging{"json", slog.LevelInfo}, tracing.Settings{}},
		{"set", with(validEnv(), "GATEWAY_ADMIN_ADDR", "0.0.0.0:9100", "GATEWAY_SHUTDOWN_DELAY", "0s", "GATEWAY_DRAIN_TIMEOUT", "45s",
			"GATEWAY_LOG_FORMAT", "text", "GATEWAY_LOG_LEVEL", "WARN", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), nil,
			"0.0.0.0:9100", Lifecycle{0, 45 * time.Second}, Logging{"text", slog.LevelWarn}, tracing.Settings{Enabled: true, Protocol: "grpc"}},
		{"flags", validEnv(), []string{"--admin-addr=off", "--shutdown-delay=10s", "--drain-timeout=1m", "--log-level=debug"},
			"off", Lifecycle{10 * time.Second, time.Minute}, Logging{"json", slog.LevelDebug}, tracing.Settings{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig(tc.env, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			life, _ := cfg.Lifecycle()
			logging, _ := cfg.Logging()
			if cfg.AdminAddr != tc.admin || life != tc.life || logging != tc.logging || cfg.Tracing != tc.tracing {
				t.Errorf("admin %q, %+v, %+v, tracing %+v; want %q, %+v, %+v, %+v", cfg.AdminAddr, life, logging, cfg.Tracing, tc.admin, tc.life, tc.logging, tc.tracing)
			}
		})
	}
}

func TestParseConfigSimulateNeedsNoCredentials(t *testing.T) {
	cfg, err := ParseConfig(map[string]string{"UPVEST_BASE_URL": "not even a URL"}, []string{"--simulate"})
	if err != nil || !cfg.Simulate {
		t.Fatalf("--simulate without UPVEST_*: %+v, %v", cfg, err)
	}
	if s := cfg.String(); strings.Contains(s, " UPVEST_") { // a setting's name, not the stream name's value
		t.Errorf("the simulate config shows unused UPVEST_* values: %s", s)
	}
}

func TestParseConfigHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		if _, err := ParseConfig(nil, []string{arg}); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: %v, want flag.ErrHelp", arg, err)
		}
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	cfg, err := ParseConfig(with(validEnv(), "GATEWAY_NATS_URL", "nats://user:"+marker+"@nats-1:4222,tls://nats-2:4222"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg)
	for _, out := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), logged.String()} {
		if strings.Contains(out, marker) {
			t.Errorf("secret shown: %s", out)
		}
		if !strings.Contains(out, "nats-1:4222") || !strings.Contains(out, "redacted") {
			t.Errorf("the NATS hosts or the redaction marks are missing: %s", out)
		}
	}
}

// TestParseConfigRegistration: GATEWAY_WEBHOOK_PUBLIC_URL asks for the
// gateway's categories, in packages the receiver takes; plain http only on
// loopback or with UPVEST_INSECURE_HTTP.
func TestParseConfigRegistration(t *testing.T) {
	tests := []struct {
		env     map[string]string
		url     string
		pkgSize int
	}{
		{with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "https://hooks.example.com/webhooks/upvest"), "https://hooks.example.com/webhooks/upvest", 1 << 20},
		{with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "https://hooks.example.com/webhooks/upvest", "GATEWAY_WEBHOOK_MAX_BODY", "64KiB"), "https://hooks.example.com/webhooks/upvest", 64 << 10},
		{with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "http://127.0.0.1:8080/webhooks/upvest"), "http://127.0.0.1:8080/webhooks/upvest", 1 << 20},
		{with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", "http://gateway-a:8080/webhooks/upvest", "UPVEST_INSECURE_HTTP", "true"), "http://gateway-a:8080/webhooks/upvest", 1 << 20},
	}
	for _, tc := range tests {
		cfg, err := ParseConfig(tc.env, nil)
		if err != nil {
			t.Fatal(err)
		}
		sub, ok, err := cfg.Registration()
		if err != nil || !ok || sub.URL != tc.url || sub.MaxPackageSize != tc.pkgSize {
			t.Errorf("Registration() = %+v %t %v, want %s in packages of %d", sub, ok, err, tc.url, tc.pkgSize)
		}
	}
	cfg, _ := ParseConfig(validEnv(), nil)
	if _, ok, err := cfg.Registration(); ok || err != nil {
		t.Errorf("without GATEWAY_WEBHOOK_PUBLIC_URL: registration %t %v", ok, err)
	}
}

// FuzzWebhookPublicURL: any GATEWAY_WEBHOOK_PUBLIC_URL is either refused
// with one line naming it, or an absolute http(s) URL without credentials.
func FuzzWebhookPublicURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/webhooks/upvest", "http://127.0.0.1:1/x", "https://u:p@h/", "//h/x", "https://h/#f", "https://[::1", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := ParseConfig(with(validEnv(), "GATEWAY_WEBHOOK_PUBLIC_URL", raw), nil)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q", err)
			}
			return
		}
		sub, ok, err := cfg.Registration()
		if cfg.WebhookPublicURL == "" {
			return
		}
		u, perr := url.Parse(sub.URL)
		if err != nil || !ok || perr != nil || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			t.Fatalf("accepted %q: %+v %t %v", raw, sub, ok, err)
		}
	})
}

// FuzzParseConfig: any environment and arguments give a Config or one
// line of error, never a panic, and no secret in the error or the printed
// configuration.
func FuzzParseConfig(f *testing.F) {
	f.Add("c5a1e1f4-6a8e-4a43-9d0a-1f2e3d4c5b6a", "secret", "https://sandbox.upvest.co", "127.0.0.1:9090", "nats://u:p@h:4222", "pass", "--simulate", "")
	f.Add("", "", "http://[::1]:80", ":0", "", "", "", "127.0.0.1:0,0s,debug,otlp")
	f.Add("x", "\n", "https://u:p@h", "host", "nats://h:0", "\x00", "--grpc-addr=:1 --http-addr=:1", ",,,")
	f.Add("c5a1e1f4-6a8e-4a43-9d0a-1f2e3d4c5b6a", "s", "https://a.b", "[::1]:9090", "tls://[::1]:4222,ws://h", "", "-h", "off,1h1s,warn,none")
	f.Add("c5a1e1f4-6a8e-4a43-9d0a-1f2e3d4c5b6a", "s", "https://a.b", "127.0.0.1:9090", "", "", "--shutdown-delay=1s --log-format=text", "127.0.0.1:9090,-1s,x,zipkin")
	// ops: the admin address, the shutdown delay, the log level and the
	// trace exporter, comma-separated.
	f.Fuzz(func(t *testing.T, clientID, secret, baseURL, addr, natsURL, pass, args, ops string) {
		// Secrets carry the marker as prefix, as real secrets cannot be
		// told from other text.
		secret, pass = marker+secret, marker+pass
		natsPass := "nats://u:" + marker + "@"
		env := map[string]string{
			"UPVEST_CLIENT_ID":              clientID,
			"UPVEST_CLIENT_SECRET":          secret,
			"UPVEST_BASE_URL":               baseURL,
			"UPVEST_SIGNING_KEY_FILE":       "/k.pem",
			"UPVEST_SIGNING_KEY_ID":         "k",
			"UPVEST_SIGNING_KEY_PASSPHRASE": pass,
			"GATEWAY_GRPC_ADDR":             addr,
			"GATEWAY_NATS_URL":              strings.Replace(natsURL, "nats://", natsPass, 1),
		}
		for i, v := range strings.SplitN(ops, ",", 4) {
			env[[]string{"GATEWAY_ADMIN_ADDR", "GATEWAY_SHUTDOWN_DELAY", "GATEWAY_LOG_LEVEL", "OTEL_TRACES_EXPORTER"}[i]] = v
		}
		cfg, err := ParseConfig(env, strings.Fields(args))
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, marker) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q holds a secret or a line break", msg)
			}
			return
		}
		if s := cfg.String(); strings.Contains(s, marker) {
			t.Fatalf("config %s shows a secret", s)
		}
		if cfg.GRPCAddr == "" || cfg.HTTPAddr == "" || cfg.DataDir == "" {
			t.Fatalf("accepted config lacks an address or the data dir: %+v", cfg)
		}
		if _, err := cfg.Lifecycle(); err != nil {
			t.Fatalf("accepted config with a bad lifecycle: %v", err)
		}
		if l, err := cfg.Logging(); err != nil || l.Format != "json" && l.Format != "text" {
			t.Fatalf("accepted config with bad logging: %+v %v", l, err)
		}
		if !cfg.Simulate && (cfg.ClientSecret == "" || !isUUID(cfg.ClientID)) {
			t.Fatalf("accepted config without credentials: %v", cfg)
		}
	})
}
