package idempotency

import (
	"context"
	"os"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchBackends are where the store's cost is measured: the embedded server
// as the gateway runs it (in-process connection; with and without an fsync
// per write, GATEWAY_EVENTS_SYNC_ALWAYS), over loopback TCP, and the
// external server when GATEWAY_NATS_URL is set.
func benchBackends(b *testing.B) []struct {
	name string
	js   func(b *testing.B) jetstream.JetStream
} {
	inProcess := func(syncAlways bool) func(b *testing.B) jetstream.JetStream {
		return func(b *testing.B) jetstream.JetStream {
			srv := startServer(b, syncAlways)
			_, js := connect(b, "", nats.InProcessServer(srv))
			return js
		}
	}
	bs := []struct {
		name string
		js   func(b *testing.B) jetstream.JetStream
	}{
		{"embedded", inProcess(false)},
		{"embedded-sync-always", inProcess(true)},
		{"embedded-tcp", func(b *testing.B) jetstream.JetStream {
			_, js := connect(b, startServer(b, false).ClientURL())
			return js
		}},
	}
	if u := os.Getenv("GATEWAY_NATS_URL"); u != "" {
		bs = append(bs, struct {
			name string
			js   func(b *testing.B) jetstream.JetStream
		}{"external", func(b *testing.B) jetstream.JetStream {
			_, js := connect(b, u)
			return js
		}})
	}
	return bs
}

// BenchmarkDo is the store's added latency per creating call: a new key,
// so a create of the entry and the write of its outcome, with a run that
// does nothing.
func BenchmarkDo(b *testing.B) {
	outcome := []byte(`{"id":"3f2b0d4e-8a6c-4d3e-9b1a-2c5e7f9a0b1c","status":"NEW"}`)
	run := func(context.Context) ([]byte, bool, error) { return outcome, true, nil }
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			js := be.js(b)
			s := openBenchStore(b, js)
			ctx := context.Background()
			for b.Loop() {
				if _, err := s.Do(ctx, newKey(), fpA, run); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDoReplay is the cost of answering a repeated request from the
// store.
func BenchmarkDoReplay(b *testing.B) {
	run := func(context.Context) ([]byte, bool, error) { return []byte(`{"id":"x"}`), true, nil }
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			s := openBenchStore(b, be.js(b))
			ctx, key := context.Background(), newKey()
			if _, err := s.Do(ctx, key, fpA, run); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if res, err := s.Do(ctx, key, fpA, run); err != nil || res.Source != Replayed {
					b.Fatal(res, err)
				}
			}
		})
	}
}

func openBenchStore(b *testing.B, js jetstream.JetStream) *Store {
	b.Helper()
	cfg := Config{Bucket: "IDEMPOTENCY_BENCH_" + randomSuffix()}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, cfg.Bucket)
	})
	s, err := Open(context.Background(), js, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
