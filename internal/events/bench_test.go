package events

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/broker"
)

// BenchmarkAppend measures events/s into the embedded log in batches of
// 100 events (a large webhook delivery), from one delivery at a time and
// from 8 concurrent ones, for each durability setting:
//   - interval: the server syncs in the background (GATEWAY_EVENTS_SYNC_ALWAYS=false);
//   - group-commit: durable before Append returns, one fsync pass shared by
//     concurrent deliveries (the default);
//   - sync-always: the server fsyncs every message (the former default).
func BenchmarkAppend(b *testing.B) {
	modes := []struct {
		name string
		cfg  broker.Config
	}{
		{"interval", broker.Config{}},
		{"group-commit", broker.Config{GroupCommit: true}},
		{"sync-always", broker.Config{SyncAlways: true}},
	}
	for _, mode := range modes {
		for _, deliveries := range []int{1, 8} {
			b.Run(fmt.Sprintf("durability=%s/deliveries=%d", mode.name, deliveries), func(b *testing.B) {
				cfg := mode.cfg
				cfg.DataDir = b.TempDir()
				l := openLog(b, logSetup{broker: cfg})
				benchmarkAppend(b, l, 100, deliveries)
			})
		}
	}
}

// benchmarkAppend appends b.N batches of batch events from deliveries
// goroutines and reports events/s.
func benchmarkAppend(b *testing.B, l *Log, batch, deliveries int) {
	evs := makeEvents(b, b.N*batch, "CASH_BALANCE.UPDATED", "2a761567-251b-450e-8615-025d61dcc95e")
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range deliveries {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := l.Append(ctx, evs[i*batch:(i+1)*batch]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFanout measures the log's fan-out without gRPC: how many
// messages per second reach subscribers whose send only counts them, for
// 10,000 subscribers each filtered to its own account group (each event
// goes to one) and for 1,000 unfiltered ones (each event goes to all).
// b.N is the number of events appended, in batches of 100.
func BenchmarkFanout(b *testing.B) {
	for _, tc := range []struct {
		name            string
		subscribers     int
		perAccountGroup bool
	}{
		{"per-account-group/subscribers=10000", 10000, true},
		{"unfiltered/subscribers=1000", 1000, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := openLog(b, logSetup{broker: broker.Config{DataDir: b.TempDir(), GroupCommit: true}})
			groups := make([]string, tc.subscribers)
			for i := range groups {
				groups[i] = uuid.NewString()
			}
			ctx, cancel := context.WithCancel(context.Background())
			var received atomic.Int64
			var started, ended sync.WaitGroup
			for i := range tc.subscribers {
				f := Filter{}
				if tc.perAccountGroup {
					f.AccountGroupID = groups[i]
				}
				started.Add(1)
				ended.Go(func() {
					first := true
					_ = l.Watch(ctx, f, "", func(m Message) error {
						if first {
							first = false
							started.Done()
						}
						if m.Event != nil {
							received.Add(1)
						}
						return nil
					})
				})
			}
			started.Wait()
			defer func() { cancel(); ended.Wait() }()

			const batch = 100
			var deliveries [][]Event
			for n := 0; n < b.N; n += batch {
				evs := make([]Event, min(batch, b.N-n))
				for j := range evs {
					evs[j] = makeEvents(b, 1, "TOPUP.SETTLED", groups[(n+j)%len(groups)])[0]
				}
				deliveries = append(deliveries, evs)
			}
			want := int64(b.N)
			if !tc.perAccountGroup {
				want *= int64(tc.subscribers)
			}
			b.ResetTimer()
			for _, evs := range deliveries {
				if err := l.Append(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			for received.Load() < want {
				time.Sleep(100 * time.Microsecond)
			}
			b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
