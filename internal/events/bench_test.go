package events

import (
	"context"
	"testing"

	"github.com/upvest-gateway/gateway/internal/broker"
)

// BenchmarkAppend measures events/s into the embedded log, in batches the
// size of a typical webhook delivery.
func BenchmarkAppend(b *testing.B) {
	for _, always := range []bool{false, true} {
		name := "sync=interval"
		if always {
			name = "sync=always"
		}
		b.Run(name, func(b *testing.B) {
			l := openLog(b, logSetup{broker: broker.Config{DataDir: b.TempDir(), SyncAlways: always}})
			const batch = 10
			evs := makeEvents(b, b.N*batch, "CASH_BALANCE.UPDATED", "2a761567-251b-450e-8615-025d61dcc95e")
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := l.Append(ctx, evs[i*batch:(i+1)*batch]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
