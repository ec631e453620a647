// Package pause waits for a while unless a context ends first: the backoff
// between attempts, a simulated latency, a benchmark's warm-up.
package pause

import (
	"context"
	"time"
)

// For waits d unless ctx ends first. It reports whether the wait ran its
// course with ctx still live: false as soon as ctx ends, and false for a
// d <= 0 whose ctx has already ended, so a caller never acts for a context
// that is gone.
func For(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
