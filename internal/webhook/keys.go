package webhook

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// KeySource fetches Upvest's webhook verification keys by key id, e.g. the
// upstream client's GET /auth/verify_keys parsed with httpsig.ParseJWKS.
type KeySource func(ctx context.Context) (map[string]crypto.PublicKey, error)

// Defaults of the key cache.
const (
	// DefaultKeyRefetchInterval is the least time between two fetches,
	// whatever the state of the cache (keys present, missing, expired, or
	// the last fetch failed): an attacker must not be able to make forged
	// deliveries cost upstream calls.
	DefaultKeyRefetchInterval = 30 * time.Second
	// DefaultKeyMaxAge is how long fetched keys are used before the next
	// delivery fetches them again, so a key Upvest withdraws stops being
	// accepted.
	DefaultKeyMaxAge = time.Hour
	// keyRetryBackoff is the wait after a failed fetch; it doubles with each
	// further failure, up to the refetch interval, so that the keys come
	// back soon after a short upstream outage without a fetch per delivery
	// during a long one.
	keyRetryBackoff = time.Second
)

var (
	errUnknownKeyID     = errors.New("unknown key id")
	errKeysUnavailable  = errors.New("verification keys unavailable")
	errKeyFetchThrottle = errors.New("unknown key id; keys were fetched recently")
)

// keyCache holds the verification keys and fetches them again, at most one
// fetch at a time and at most one per interval (less after failures, see
// keyRetryBackoff), when they are missing, too old, or a delivery names a
// key id it does not know.
type keyCache struct {
	source   KeySource
	now      func() time.Time
	interval time.Duration // least time between fetches
	maxAge   time.Duration

	mu        sync.Mutex
	keys      map[string]crypto.PublicKey
	fetchedAt time.Time // last successful fetch
	lastFetch time.Time // start of the last fetch, whatever its outcome
	failures  int       // failed fetches since the last success
	lastErr   error
	inflight  *keyFetch
}

type keyFetch struct {
	done chan struct{}
	err  error
}

// resolve returns the key for kid; it has the shape of httpsig.KeyResolver.
func (c *keyCache) resolve(ctx context.Context, kid string) (crypto.PublicKey, error) {
	c.mu.Lock()
	now := c.now()
	fresh := c.keys != nil && now.Sub(c.fetchedAt) < c.maxAge
	key, known := c.keys[kid]
	if known && fresh {
		c.mu.Unlock()
		return key, nil
	}
	f := c.inflight
	if f == nil {
		if !c.mayFetch(now) {
			defer c.mu.Unlock()
			switch {
			case known:
				return key, nil // old, but no fetch is allowed yet: keep working
			case c.keys == nil || c.failures > 0:
				// Our side cannot tell: 503, and Upvest retries.
				if c.lastErr == nil {
					return nil, errKeysUnavailable
				}
				return nil, fmt.Errorf("%w: %w", errKeysUnavailable, c.lastErr)
			default:
				return nil, errKeyFetchThrottle
			}
		}
		c.lastFetch = now
		f = &keyFetch{done: make(chan struct{})}
		c.inflight = f
		go c.fetch(f)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	key, known = c.keys[kid]
	c.mu.Unlock()
	switch {
	case known:
		return key, nil // also when the fetch failed: the old key still serves
	case f.err != nil:
		return nil, f.err
	}
	return nil, errUnknownKeyID
}

// mayFetch reports whether a fetch may start at now; c.mu is held.
func (c *keyCache) mayFetch(now time.Time) bool {
	if c.lastFetch.IsZero() {
		return true
	}
	wait := c.interval
	if c.failures > 0 {
		wait = min(c.interval, keyRetryBackoff<<min(c.failures-1, 16))
	}
	return now.Sub(c.lastFetch) >= wait
}

// fetch runs detached from any one request, so that a delivery giving up
// does not cancel the fetch the others wait for.
func (c *keyCache) fetch(f *keyFetch) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := c.source(ctx)
	if err == nil && len(keys) == 0 {
		err = errors.New("no keys")
	}
	c.mu.Lock()
	if err != nil {
		f.err = fmt.Errorf("%w: %w", errKeysUnavailable, err)
		c.failures++
		c.lastErr = err
	} else {
		c.keys = maps.Clone(keys)
		c.fetchedAt = c.now()
		c.failures, c.lastErr = 0, nil
	}
	c.inflight = nil
	c.mu.Unlock()
	close(f.done)
}
