package pause_test

import (
	"context"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/pause"
)

func TestFor(t *testing.T) {
	t.Parallel()
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"runs its course", live, 5 * time.Millisecond, true},
		{"no wait", live, 0, true},
		{"negative wait", live, -time.Second, true},
		{"context ended", ended, time.Hour, false},
		{"no wait, context ended", ended, 0, false},
	} {
		if got := pause.For(tc.ctx, tc.d); got != tc.want {
			t.Errorf("%s: For = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestForEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- pause.For(ctx, time.Hour) }()
	cancel()
	if <-done {
		t.Fatal("For reported an hour passed after its context ended")
	}
}

func ExampleFor() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if pause.For(ctx, 10*time.Millisecond) {
		// The wait ran its course: try again.
	}
}
