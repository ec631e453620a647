package events

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

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
