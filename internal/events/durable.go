package events

import (
	"context"
	"sync"
	"time"
)

// durableMark is how far the log is known to be durable, by stream
// sequence: Append advances it once its sync has passed. The stream writes
// messages one after another, so a sync that started after message S was
// acknowledged covers every message up to S.
//
// The tail reads a message as soon as it is written, before it is synced,
// and hands it on only once it is durable: usually the Append that wrote it
// is just syncing, and the tail waits for that sync to mark it rather than
// pay a second one.
type durableMark struct {
	mu      sync.Mutex
	seq     uint64
	changed chan struct{} // closed and replaced when seq advances
}

func newDurableMark() *durableMark {
	return &durableMark{changed: make(chan struct{})}
}

func (d *durableMark) advance(seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq <= d.seq {
		return
	}
	d.seq = seq
	close(d.changed)
	d.changed = make(chan struct{})
}

// wait waits until seq is marked durable, for at most patience; it reports
// whether it is.
func (d *durableMark) wait(ctx context.Context, seq uint64, patience time.Duration) bool {
	var timeout <-chan time.Time
	for {
		d.mu.Lock()
		reached, changed := d.seq >= seq, d.changed
		d.mu.Unlock()
		if reached {
			return true
		}
		if timeout == nil {
			t := time.NewTimer(patience)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
