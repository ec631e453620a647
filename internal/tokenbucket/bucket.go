// Package tokenbucket is a token bucket that takes tokens back: for budgets
// whose users learn only afterwards that a use should not count (a
// delivery whose signature verified, a call that was refused anyway).
//
// golang.org/x/time/rate cannot do this: a cancelled reservation restores
// its tokens only as far as no later reservation was made, so under
// concurrent use the refunds are lost.
package tokenbucket

import "time"

// Bucket holds up to a burst of tokens and gains rate tokens a second. It is
// not safe for concurrent use: its owner locks around it, which lets an
// owner take from two buckets at once or from neither.
type Bucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// New returns a full bucket. rate and burst must be positive.
func New(rate float64, burst int, now time.Time) *Bucket {
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), at: now}
}

// Wait brings the bucket up to now and returns how long until it holds a
// token: 0 if it holds one now.
func (b *Bucket) Wait(now time.Time) time.Duration {
	if now.After(b.at) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// Take takes a token if the bucket holds one at now; otherwise it returns
// how long until it will.
func (b *Bucket) Take(now time.Time) (wait time.Duration, ok bool) {
	if wait = b.Wait(now); wait > 0 {
		return wait, false
	}
	b.tokens--
	return 0, true
}

// GiveBack returns a token taken earlier (never past the burst).
func (b *Bucket) GiveBack() { b.tokens = min(b.burst, b.tokens+1) }

// SetLimit changes the rate and burst from now on; the tokens held stay,
// up to the new burst. rate and burst must be positive.
func (b *Bucket) SetLimit(now time.Time, rate float64, burst int) {
	b.Wait(now)
	b.rate, b.burst = rate, float64(burst)
	b.tokens = min(b.tokens, b.burst)
}

// LastUsed is when the bucket was last brought up to date (by Wait, Take
// or SetLimit): an owner keeping many drops those idle long enough to be
// full again.
func (b *Bucket) LastUsed() time.Time { return b.at }
