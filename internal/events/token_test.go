package events

import (
	"math"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	id := newStreamIdentity("UPVEST_EVENTS", 1_700_000_000_123_456_789)
	for _, seq := range []uint64{0, 1, 42, math.MaxUint64} {
		p, err := decodeToken(id.token(seq))
		if err != nil {
			t.Fatal(err)
		}
		if p.seq != seq || p.streamHash != id.hash || p.created != id.created {
			t.Errorf("decode(token(%d)) = %+v", seq, p)
		}
	}
	tok := id.token(7)
	for _, bad := range []string{"", "x", tok[:len(tok)-1], tok + "A", "!" + tok[1:], flip(tok, 10), flip(tok, 0)} {
		if _, err := decodeToken(bad); err == nil {
			t.Errorf("decodeToken(%q) accepted", bad)
		}
	}
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
