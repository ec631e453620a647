package events

import (
	"strings"
	"testing"
)

// FuzzParseDelivery: never panics, and whatever it accepts is stored in a
// form that reads back as the same events on valid subjects.
func FuzzParseDelivery(f *testing.F) {
	f.Add([]byte(sampleDelivery))
	f.Add([]byte(`{"payload":[]}`))
	f.Add([]byte(`{"payload":[{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56.5+01:00","type":"CASH_BALANCE.UPDATED","object":{"account_group_id":"2a761567-251b-450e-8615-025d61dcc95e","balance":"1.00"}}]}`))
	f.Add([]byte(`{"payload":[{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"TOPUP.X","object":{"account_group_id":null},"webhook_id":null}]}`))
	f.Add([]byte(`{"payload":[{"id":1}]}`))
	f.Add([]byte(`{"payload":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := ParseDelivery(body)
		if err != nil {
			if evs != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		for i, e := range evs {
			data, err := e.MarshalJSON()
			if err != nil {
				t.Fatalf("event %d: marshal: %v", i, err)
			}
			back, err := parseEvent(data)
			if err != nil {
				t.Fatalf("event %d does not re-validate: %v\n%s", i, err, data)
			}
			if !sameEvent(e, back) {
				t.Fatalf("event %d changed: %+v -> %+v", i, e, back)
			}
			subj := eventSubject("p", &e)
			toks := strings.Split(subj, ".")
			if len(toks) != 4 || strings.ContainsAny(subj, "*> \t\r\n") {
				t.Fatalf("event %d: bad subject %q", i, subj)
			}
			if !subjectMatches("p.*.*.*", subj) {
				t.Fatalf("event %d: %q escapes the stream's subjects", i, subj)
			}
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
