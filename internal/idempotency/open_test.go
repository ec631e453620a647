package idempotency

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestConfigDefaultsAndLimits(t *testing.T) {
	t.Parallel()
	got, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Bucket: DefaultBucket, Retention: DefaultRetention, Replicas: 1, Lease: DefaultLease,
		RenewEvery: DefaultLease / 3, RequestTimeout: DefaultRequestTimeout}
	if got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}

	tests := []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"renewal at a third of the lease", Config{Lease: 3 * time.Second, RenewEvery: time.Second}, ""},
		{"bucket with a dot", Config{Bucket: "A.B"}, "Bucket"},
		{"bucket with a space", Config{Bucket: "A B"}, "Bucket"},
		{"six replicas", Config{Replicas: 6}, "Replicas"},
		{"negative replicas", Config{Replicas: -1}, "Replicas"},
		{"negative retention", Config{Retention: -time.Hour}, "positive"},
		{"lease too short", Config{Lease: time.Millisecond, RenewEvery: time.Microsecond}, "Lease"},
		{"lease too long", Config{Lease: time.Hour}, "Lease"},
		{"renewal at half the lease", Config{Lease: time.Second, RenewEvery: 500 * time.Millisecond}, "RenewEvery"},
		{"retention within a lease", Config{Retention: 5 * time.Second}, "Retention"},
	}
	for _, tt := range tests {
		_, err := tt.cfg.withDefaults()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.want)
		}
	}
}

// A store asked for more replicas than NATS has servers refuses to open,
// rather than run unreplicated: on a new bucket, and on one that exists
// with fewer replicas.
func TestOpenRefusesMoreReplicasThanServers(t *testing.T) {
	t.Parallel()
	u := startServer(t, false).ClientURL()
	_, js := connect(t, u)
	ctx := testContext(t)

	existing := testConfig(t, u)
	openStore(t, js, existing)

	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"new bucket", testConfig(t, u)},
		{"existing bucket", existing},
	} {
		tt.cfg.Replicas = 3
		_, err := Open(ctx, js, tt.cfg)
		if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "3 replicas") {
			t.Fatalf("%s: Open = %v, want a refusal naming 3 replicas", tt.name, err)
		}
		t.Logf("%s: %v", tt.name, err)
		replicas := 0
		if st, err := js.Stream(ctx, "KV_"+tt.cfg.Bucket); err == nil {
			replicas = st.CachedInfo().Config.Replicas
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
		if replicas > 1 {
			t.Fatalf("%s: the bucket has %d replicas on a single server", tt.name, replicas)
		}
	}
}

// On the external NATS (a single server in CI): five replicas, which only a
// cluster of five could keep; then Open succeeding is right.
func TestOpenRefusesMoreReplicasThanServersExternal(t *testing.T) {
	t.Parallel()
	u := os.Getenv("GATEWAY_NATS_URL")
	if u == "" {
		t.Skip("GATEWAY_NATS_URL not set")
	}
	_, js := connect(t, u)
	cfg := testConfig(t, u)
	cfg.Replicas = 5
	_, err := Open(testContext(t), js, cfg)
	if err == nil {
		t.Skip("the external NATS is a cluster of five or more: nothing to refuse")
	}
	if errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "5 replicas") {
		t.Fatalf("Open = %v, want a refusal naming 5 replicas", err)
	}
	t.Log(err)
}

func TestOpenNeedsJetStream(t *testing.T) {
	t.Parallel()
	if _, err := Open(context.Background(), nil, Config{}); err == nil {
		t.Fatal("Open without a connection succeeded")
	}
}
