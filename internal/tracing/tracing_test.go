package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/tracing"
)

func TestParseEnv(t *testing.T) {
	t.Parallel()
	on := func(p string) tracing.Settings { return tracing.Settings{Enabled: true, Protocol: p} }
	for _, tc := range []struct {
		name string
		env  map[string]string
		want tracing.Settings
		bad  string // the variable the error names
	}{
		{"nothing set: off", nil, tracing.Settings{}, ""},
		{"an endpoint: on, http", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, on(tracing.ProtocolHTTP), ""},
		{"a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, on(tracing.ProtocolHTTP), ""},
		{"otlp without endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on(tracing.ProtocolHTTP), ""},
		{"grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on(tracing.ProtocolGRPC), ""},
		{"the traces protocol wins", map[string]string{"OTEL_TRACES_EXPORTER": "OTLP", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on(tracing.ProtocolHTTP), ""},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, tracing.Settings{}, ""},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, tracing.Settings{}, ""},
		{"not disabled", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, on(tracing.ProtocolHTTP), ""},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, tracing.Settings{}, "OTEL_TRACES_EXPORTER"},
		{"json", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, tracing.Settings{}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"bad disabled", map[string]string{"OTEL_SDK_DISABLED": "yes"}, tracing.Settings{}, "OTEL_SDK_DISABLED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tracing.ParseEnv(tc.env)
			if tc.bad != "" {
				var ee *tracing.EnvError
				if !errors.As(err, &ee) || ee.Var != tc.bad || !strings.HasPrefix(err.Error(), tc.bad+" ") {
					t.Fatalf("err %v, want one naming %s", err, tc.bad)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseEnv(f *testing.F) {
	for _, seed := range [][3]string{{"", "", ""}, {"otlp", "grpc", "true"}, {"none", "http/protobuf", "false"}, {"zipkin", "x", "maybe"}} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, exporter, protocol, disabled string) {
		s, err := tracing.ParseEnv(map[string]string{"OTEL_TRACES_EXPORTER": exporter, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_SDK_DISABLED": disabled})
		if err != nil {
			if s != (tracing.Settings{}) {
				t.Errorf("settings %+v with an error", s)
			}
			return
		}
		if s.Enabled != (s.Protocol != "") || s.Enabled && s.Protocol != tracing.ProtocolGRPC && s.Protocol != tracing.ProtocolHTTP {
			t.Errorf("settings %+v", s)
		}
	})
}

// TestExportOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, the spans reach the
// collector over OTLP/HTTP by the time Shutdown returns.
func TestExportOTLP(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
		body  []byte
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths, body = append(paths, r.URL.Path), append(body, b...)
		mu.Unlock()
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "gateway-under-test")
	s, err := tracing.ParseEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL})
	if err != nil || !s.Enabled {
		t.Fatalf("ParseEnv: %+v %v", s, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := tracing.New(ctx, s, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if !tracing.Records(tr.Provider) {
		t.Error("tracing on, and Records says it records nothing")
	}
	_, span := tr.Provider.Tracer("test").Start(ctx, "a-span-to-export")
	span.End()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[0] != "/v1/traces" {
		t.Fatalf("collector got %v, want POST /v1/traces", paths)
	}
	for _, want := range []string{"a-span-to-export", "gateway-under-test", "v1.2.3"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the export lacks %q", want)
		}
	}
}

// TestOff: without settings nothing is recorded, and the trace context is
// still W3C Trace Context.
func TestOff(t *testing.T) {
	t.Parallel()
	tr, err := tracing.New(context.Background(), tracing.Settings{}, "v")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Provider.Tracer("test").Start(context.Background(), "x")
	if span.IsRecording() || tracing.Records(tr.Provider) {
		t.Error("a span records with tracing off")
	}
	if f := tr.Propagator.Fields(); len(f) != 2 || f[0] != "traceparent" {
		t.Errorf("propagator fields %v", f)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
