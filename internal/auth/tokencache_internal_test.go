package auth

import (
	"testing"
	"time"
)

func TestVerifiedTokensBound(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := newVerifiedTokens(3)
	live := verifiedToken{identity: "live", expires: now.Add(time.Hour)}
	dead := verifiedToken{identity: "dead", expires: now.Add(-time.Second)}
	c.put(tokenDigest("a"), live, now)
	c.put(tokenDigest("b"), dead, now)
	c.put(tokenDigest("c"), live, now)
	if _, ok := c.get(tokenDigest("b"), now); ok {
		t.Error("an expired entry was found")
	}
	if e, ok := c.get(tokenDigest("a"), now); !ok || e.identity != "live" {
		t.Errorf("a: %+v, %v", e, ok)
	}
	// Full: the expired entry makes room.
	c.put(tokenDigest("d"), live, now)
	if n := c.len(); n != 3 {
		t.Errorf("%d entries after dropping the expired one, want 3", n)
	}
	for _, tok := range []string{"a", "c", "d"} {
		if _, ok := c.get(tokenDigest(tok), now); !ok {
			t.Errorf("%s lost", tok)
		}
	}
	// Full of live entries: they all go, the new one stays.
	c.put(tokenDigest("e"), live, now)
	if n := c.len(); n != 1 {
		t.Errorf("%d entries, want 1", n)
	}
	if _, ok := c.get(tokenDigest("e"), now); !ok {
		t.Error("the entry put last is lost")
	}
	// Expiry is exp plus the leeway, inclusive, as the claims check has it.
	if _, ok := c.get(tokenDigest("e"), live.expires); !ok {
		t.Error("refused at its expiry instant")
	}
	if _, ok := c.get(tokenDigest("e"), live.expires.Add(time.Nanosecond)); ok {
		t.Error("found after its expiry")
	}
}

func TestVerifiedTokensOff(t *testing.T) {
	t.Parallel()
	c := newVerifiedTokens(0)
	c.put(tokenDigest("a"), verifiedToken{identity: "x", expires: time.Now().Add(time.Hour)}, time.Now())
	if _, ok := c.get(tokenDigest("a"), time.Now()); ok {
		t.Error("a cache of size 0 remembered a token")
	}
}
