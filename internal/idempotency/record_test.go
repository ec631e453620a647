package idempotency

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	fp := fingerprintHash(fpA)
	for _, r := range []record{
		{Version: recordVersion, State: stateInFlight, Fingerprint: fp, Owner: "gw-0/1/ab", LeaseMillis: 10000},
		{Version: recordVersion, State: stateDone, Fingerprint: fp, Outcome: []byte(`{"id":"x"}`)},
		{Version: recordVersion, State: stateDone, Fingerprint: fp, Outcome: []byte{0, 0xff}},
		{Version: recordVersion, State: stateReleased, Fingerprint: fp},
	} {
		got, err := decodeRecord(r.encode())
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %+v = %+v, %v", r, got, err)
		}
	}
}

func TestDecodeRecordRefusesWhatItCannotTrust(t *testing.T) {
	t.Parallel()
	fp := `"` + strings.Repeat("A", 43) + `="` // 32 bytes in base64
	tests := []struct{ name, in string }{
		{"not JSON", `{`},
		{"other version", `{"v":2,"state":"done","fp":` + fp + `}`},
		{"no fingerprint", `{"v":1,"state":"done"}`},
		{"short fingerprint", `{"v":1,"state":"done","fp":"AAAA"}`},
		{"unknown state", `{"v":1,"state":"paused","fp":` + fp + `}`},
		{"in flight without a lease", `{"v":1,"state":"in_flight","fp":` + fp + `}`},
		{"in flight for an hour", `{"v":1,"state":"in_flight","fp":` + fp + `,"lease_ms":3600000}`},
	}
	for _, tt := range tests {
		if _, err := decodeRecord([]byte(tt.in)); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: decodeRecord = %v, want errBadRecord", tt.name, err)
		}
	}
}

// An entry read from the bucket may have been written by another version of
// the gateway, or by hand: decoding never panics, and what it accepts
// encodes back to the same record.
func FuzzDecodeRecord(f *testing.F) {
	fp := fingerprintHash(fpA)
	f.Add(record{Version: recordVersion, State: stateInFlight, Fingerprint: fp, Owner: "o", LeaseMillis: 1}.encode())
	f.Add(record{Version: recordVersion, State: stateDone, Fingerprint: fp, Outcome: []byte("x")}.encode())
	f.Add(record{Version: recordVersion, State: stateReleased, Fingerprint: fp}.encode())
	f.Add([]byte(`{"v":1,"state":"done","fp":"` + strings.Repeat("A", 43) + `=","outcome":""}`))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(r.encode())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("%+v re-decodes as %+v, %v", r, again, err)
		}
	})
}
