package events

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseEvent: never panics, and whatever it accepts is stored in a form
// that reads back as the same event on a valid subject (which is why Append
// need not read back an event ParseEvent returned unchanged).
func FuzzParseEvent(f *testing.F) {
	for _, e := range sampleEvents {
		f.Add([]byte(e))
	}
	f.Add([]byte(`{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56.5+01:00","type":"CASH_BALANCE.UPDATED","object":{"account_group_id":"2a761567-251b-450e-8615-025d61dcc95e","balance":"1.00"}}`))
	f.Add([]byte(`{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"TOPUP.X","object":{"account_group_id":null},"webhook_id":null}`))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEvent(data)
		if err != nil {
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DeliveryError", err)
			}
			return
		}
		if !e.unchangedSinceParse() {
			t.Fatal("Append would validate it again")
		}
		stored, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := parseEvent(stored)
		if err != nil {
			t.Fatalf("does not re-validate: %v\n%s", err, stored)
		}
		if !sameEvent(e, back) {
			t.Fatalf("changed: %+v -> %+v", e, back)
		}
		subj := eventSubject("p", &e)
		toks := strings.Split(subj, ".")
		if len(toks) != 4 || strings.ContainsAny(subj, "*> \t\r\n") {
			t.Fatalf("bad subject %q", subj)
		}
		if !subjectMatches("p.*.*.*", subj) {
			t.Fatalf("%q escapes the stream's subjects", subj)
		}
	})
}

// FuzzToken: decoding arbitrary input never panics, and a token that decodes
// is exactly the encoding of what it decoded to.
func FuzzToken(f *testing.F) {
	id := newStreamIdentity("UPVEST_EVENTS", 1_700_000_000_000_000_000)
	f.Add(id.token(0, 0))
	f.Add(id.token(0xdeadbeef, 12345))
	f.Add("")
	f.Add("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") // a version 1 token
	f.Add("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add(strings.Repeat("_", 39))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodeToken(s)
		if err != nil {
			return
		}
		again := streamIdentity{hash: p.streamHash, created: p.created}.token(p.filter, p.seq)
		if again != s {
			t.Fatalf("decode(%q) re-encodes as %q", s, again)
		}
	})
}
