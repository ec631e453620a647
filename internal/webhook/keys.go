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
	// DefaultKeyRefetchInterval is the least time between two fetches caused
	// by deliveries naming an unknown key id: an attacker must not be able
	// to make every forged request cost an upstream call.
	DefaultKeyRefetchInterval = 30 * time.Second
	// DefaultKeyMaxAge is how long fetched keys are used before the next
	// delivery fetches them again, so a key Upvest withdraws stops being
	// accepted.
	DefaultKeyMaxAge = time.Hour
)

var (
	errUnknownKeyID     = errors.New("unknown key id")
	errKeysUnavailable  = errors.New("verification keys unavailable")
	errKeyFetchThrottle = errors.New("unknown key id; keys were fetched recently")
)

// keyCache holds the verification keys and fetches them again, at most one
// fetch at a time, when they are missing, too old, or a delivery names a
// key id it does not know.
type keyCache struct {
	source   KeySource
	now      func() time.Time
	interval time.Duration // least time between unknown-kid refetches
	maxAge   time.Duration

	mu          sync.Mutex
	keys        map[string]crypto.PublicKey
	fetchedAt   time.Time // last successful fetch
	lastRefetch time.Time // last fetch caused by an unknown key id
	inflight    *keyFetch
}

type keyFetch struct {
	done chan struct{}
	err  error
}

// resolve returns the key for kid; it has the shape of httpsig.KeyResolver.
func (c *keyCache) resolve(ctx context.Context, kid string) (crypto.PublicKey, error) {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		now := c.now()
		fresh := c.keys != nil && now.Sub(c.fetchedAt) < c.maxAge
		key, known := c.keys[kid]
		if known && fresh {
			c.mu.Unlock()
			return key, nil
		}
		if attempt > 0 {
			// We waited for a fetch that has completed.
			c.mu.Unlock()
			if known {
				return key, nil // stale, but the fetch failed: keep working
			}
			return nil, errUnknownKeyID
		}
		f := c.inflight
		if f == nil {
			switch {
			case !fresh:
				// Missing or expired keys: always worth a fetch.
			case now.Sub(c.lastRefetch) < c.interval:
				c.mu.Unlock()
				return nil, errKeyFetchThrottle
			default:
				c.lastRefetch = now
			}
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
		if f.err != nil {
			c.mu.Lock()
			key, known = c.keys[kid]
			c.mu.Unlock()
			if known {
				return key, nil
			}
			return nil, f.err
		}
	}
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
	} else {
		c.keys = maps.Clone(keys)
		c.fetchedAt = c.now()
	}
	c.inflight = nil
	c.mu.Unlock()
	close(f.done)
}
