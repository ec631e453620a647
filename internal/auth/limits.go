package auth

import (
	"sync"
	"time"

	"github.com/upvest-gateway/gateway/internal/tokenbucket"
)

// streamRetryAfter is what a caller at its stream limit is told to wait: a
// stream ends when its client leaves, so there is no better guess.
const streamRetryAfter = time.Second

// limiter holds each identity's token bucket and open stream count, so one
// noisy caller spends only its own limits.
type limiter struct {
	mu      sync.Mutex
	callers map[string]*callerLimits
	policy  *Policy // the policy the map was last pruned for
}

type callerLimits struct {
	limits  Limits
	bucket  *tokenbucket.Bucket // guarded by limiter.mu
	streams int                 // guarded by limiter.mu
}

func newLimiter() *limiter { return &limiter{callers: map[string]*callerLimits{}} }

// get returns g's state, creating it or bringing it to g's current limits.
// It holds l.mu.
func (l *limiter) getLocked(p *Policy, g *Grant) *callerLimits {
	if p != l.policy {
		// A reloaded policy: forget callers it no longer knows (unless a
		// stream of theirs is still open), so the map stays the policy's size.
		for id, c := range l.callers {
			if _, ok := p.callers[id]; !ok && c.streams == 0 {
				delete(l.callers, id)
			}
		}
		l.policy = p
	}
	c := l.callers[g.identity]
	if c == nil {
		c = &callerLimits{limits: g.limits, bucket: tokenbucket.New(g.limits.CallsPerSecond, g.limits.Burst, time.Now())}
		l.callers[g.identity] = c
	} else if c.limits != g.limits {
		c.bucket.SetLimit(time.Now(), g.limits.CallsPerSecond, g.limits.Burst)
		c.limits = g.limits
	}
	return c
}

// call takes a token for one call; when none is left, it returns how long
// until one will be.
func (l *limiter) call(p *Policy, g *Grant) (time.Duration, bool) {
	if g.limits.unlimited() {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// A refused call takes nothing: it does not use up the caller's future.
	return l.getLocked(p, g).bucket.Take(time.Now())
}

// openStream counts a stream against g's limit; release uncounts it.
func (l *limiter) openStream(p *Policy, g *Grant) (release func(), ok bool) {
	if g.limits.unlimited() {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.getLocked(p, g)
	if c.streams >= g.limits.Streams {
		return nil, false
	}
	c.streams++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			c.streams--
			l.mu.Unlock()
		})
	}, true
}
