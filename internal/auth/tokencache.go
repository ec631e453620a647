package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DefaultTokenCacheSize bounds the verified bearer tokens a JWTVerifier
// remembers: far more than the live tokens of a deployment's callers.
const DefaultTokenCacheSize = 10_000

// verifiedTokens remembers the bearer tokens that verified, so that a
// caller sending the same token on every call pays for its signature once:
// an ES256 check costs about as much CPU as the rest of a call. Tokens are
// known by their SHA-256, so an entry is never found for a token that
// differs in any byte. An entry serves only while its token is unexpired
// and the key that verified it is still the key its kid names in the
// current key set: a key dropped from the JWKS, or replaced, ends the
// entries of its tokens. Refusals are never remembered.
type verifiedTokens struct {
	max     int
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]verifiedToken
}

// verifiedToken is what a verification established.
type verifiedToken struct {
	identity string
	kid      string
	key      *jose.JSONWebKey // the key that verified the signature
	expires  time.Time        // exp plus the leeway
}

func newVerifiedTokens(max int) *verifiedTokens {
	if max <= 0 {
		return nil
	}
	return &verifiedTokens{max: max, entries: make(map[[sha256.Size]byte]verifiedToken)}
}

func tokenDigest(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// get returns the entry of a token that has not expired at now. A nil
// cache remembers nothing.
func (c *verifiedTokens) get(digest [sha256.Size]byte, now time.Time) (verifiedToken, bool) {
	if c == nil {
		return verifiedToken{}, false
	}
	c.mu.RLock()
	e, ok := c.entries[digest]
	c.mu.RUnlock()
	if !ok || now.After(e.expires) {
		return verifiedToken{}, false
	}
	return e, true
}

// put remembers a verified token. When full, it drops the expired entries,
// and if that frees nothing, all of them: the cache only saves work, and
// the callers' next calls verify once more.
func (c *verifiedTokens) put(digest [sha256.Size]byte, e verifiedToken, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for d, old := range c.entries {
			if now.After(old.expires) {
				delete(c.entries, d)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[digest] = e
}

// len is the number of entries.
func (c *verifiedTokens) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
