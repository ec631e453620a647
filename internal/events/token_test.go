package events

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

func TestTokenRoundTrip(t *testing.T) {
	id := newStreamIdentity("UPVEST_EVENTS", 1_700_000_000_123_456_789)
	filter := filterHash([]string{"a.b", "a.c"})
	for _, seq := range []uint64{0, 1, 42, math.MaxUint64} {
		p, err := decodeToken(id.token(filter, seq))
		if err != nil {
			t.Fatal(err)
		}
		if p.seq != seq || p.streamHash != id.hash || p.created != id.created || p.filter != filter {
			t.Errorf("decode(token(%d)) = %+v", seq, p)
		}
	}
	tok := id.token(filter, 7)
	// A well-formed token of the previous version (no filter hash).
	v1 := make([]byte, 25)
	v1[0] = 1
	for _, bad := range []string{"", "x", tok[:len(tok)-1], tok + "A", "!" + tok[1:], flip(tok, 10), flip(tok, 0), flip(tok, 20),
		base64.RawURLEncoding.EncodeToString(v1)} {
		if _, err := decodeToken(bad); err == nil {
			t.Errorf("decodeToken(%q) accepted", bad)
		}
	}
}

func TestFilterHash(t *testing.T) {
	if filterHash([]string{"a.b", "a.c"}) != filterHash([]string{"a.c", "a.b", "a.c"}) {
		t.Error("the same subjects in another order hash differently")
	}
	if filterHash([]string{"a.b", "a.c"}) == filterHash([]string{"a.b"}) || filterHash([]string{"a.bc"}) == filterHash([]string{"a.b", "c"}) {
		t.Error("different subjects hash the same")
	}
}

// A token resumes only the filter it was issued for: a heartbeat of filter
// A may have moved past events of filter B, so B must not start after it.
func TestTokenOfAnotherFilter(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		ag := uuid.NewString()
		a := Filter{Families: []string{FamilyTopup, FamilyDirectDebit}, AccountGroupID: ag}
		b := Filter{Families: []string{FamilyWithdrawal}, AccountGroupID: ag}
		s := startWatch(t, l, a, "")
		mustAppend(t, l, makeEvents(t, 2, "WITHDRAWAL.SETTLED", ag)) // skipped by A
		hb := s.heartbeat(t)
		s.stop(t)

		err := l.Watch(context.Background(), b, hb.Token, func(Message) error { return nil })
		if !errors.Is(err, ErrBadToken) {
			t.Fatalf("Watch with another filter = %v, want ErrBadToken", err)
		}
		// The same filter, its subjects in another order, resumes.
		r := startWatch(t, l, Filter{Families: []string{FamilyDirectDebit, FamilyTopup}, AccountGroupID: ag}, hb.Token)
		r.quiet(t, 200*time.Millisecond)
		r.stop(t)
	})
}

// flip changes one character of s.
func flip(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
