package tokenbucket

import (
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestBucketRefillAndWait(t *testing.T) {
	t.Parallel()
	b := New(10, 3, t0)
	for i := range 3 {
		if _, ok := b.Take(t0); !ok {
			t.Fatalf("take %d of a full bucket of 3 failed", i)
		}
	}
	wait, ok := b.Take(t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: Take = %v, %v; want 100ms, false", wait, ok)
	}
	if wait := b.Wait(t0.Add(40 * time.Millisecond)); wait != 60*time.Millisecond {
		t.Fatalf("Wait 40ms later = %v, want 60ms", wait)
	}
	if _, ok := b.Take(t0.Add(100 * time.Millisecond)); !ok {
		t.Fatal("a token gained after 100ms could not be taken")
	}
	// An hour later: full, never more than the burst.
	later := t0.Add(time.Hour)
	for i := range 3 {
		if _, ok := b.Take(later); !ok {
			t.Fatalf("take %d an hour later failed", i)
		}
	}
	if _, ok := b.Take(later); ok {
		t.Fatal("the bucket held more than its burst")
	}
	if !b.LastUsed().Equal(later) {
		t.Fatalf("LastUsed = %v, want %v", b.LastUsed(), later)
	}
}

// Tokens given back count in full however takes and give-backs interleave
// (what x/time/rate's reservations do not do).
func TestBucketGiveBackInterleaved(t *testing.T) {
	t.Parallel()
	b := New(10, 20, t0)
	for range 20 {
		b.Take(t0)
	}
	t1 := t0.Add(500 * time.Millisecond) // 5 tokens gained
	for i := range 5 {
		if _, ok := b.Take(t1); !ok {
			t.Fatalf("take %d after the refill failed", i)
		}
	}
	for range 25 {
		b.GiveBack()
	}
	for i := range 20 {
		if _, ok := b.Take(t1); !ok {
			t.Fatalf("after giving every token back, take %d of 20 failed", i)
		}
	}
	if _, ok := b.Take(t1); ok {
		t.Fatal("a take beyond the burst succeeded")
	}
	b.GiveBack()
	b.GiveBack()
	if _, ok := b.Take(t1); !ok {
		t.Fatal("a token given back could not be taken")
	}
}

func TestBucketSetLimit(t *testing.T) {
	t.Parallel()
	b := New(1, 10, t0)
	b.SetLimit(t0, 100, 2) // holds 10: down to the new burst
	for i := range 2 {
		if _, ok := b.Take(t0); !ok {
			t.Fatalf("take %d failed", i)
		}
	}
	if wait, ok := b.Take(t0); ok || wait != 10*time.Millisecond {
		t.Fatalf("Take = %v, %v; want 10ms at the new rate", wait, ok)
	}
	b.SetLimit(t0, 1, 50) // a larger burst is not a gift of tokens
	if _, ok := b.Take(t0); ok {
		t.Fatal("raising the burst added tokens")
	}
}

// A clock that steps back (callers read it before they lock) neither adds
// nor removes tokens.
func TestBucketClockBackwards(t *testing.T) {
	t.Parallel()
	b := New(10, 1, t0)
	b.Take(t0.Add(time.Second))
	if _, ok := b.Take(t0); ok {
		t.Fatal("an earlier time gave a token")
	}
	if wait := b.Wait(t0.Add(time.Second + 50*time.Millisecond)); wait != 50*time.Millisecond {
		t.Fatalf("Wait = %v, want 50ms", wait)
	}
}
