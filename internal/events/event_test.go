package events

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// sampleEvents are two events as a delivery's payload holds them.
var sampleEvents = []string{`{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"TOPUP.SETTLED",
 "object":{"id":"a4496ff8-ce69-4e23-9f2e-6c3c7914b95c","account_group_id":"2A761567-251B-450E-8615-025D61DCC95E",
 "settlement_reference":"91a44df3","cash_amount":"100.01","currency":"EUR","created_at":"2022-12-05T12:34:56Z","status":"SETTLED"},
 "webhook_id":"9df39835-be87-4243-9018-f2500b39cee6"}`,
	`{"created_at":"2021-07-21T14:10:00.00Z","id":"8962b496-8d42-4560-bfab-10490dd1a721","type":"DIRECT_DEBIT.NEW",
 "object":{"cash_amount":"200.00","status":"NEW"}}`}

func parseSamples(t *testing.T) []Event {
	t.Helper()
	var evs []Event
	for _, raw := range sampleEvents {
		e, err := ParseEvent([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestParseEventSample(t *testing.T) {
	evs := parseSamples(t)
	e := evs[0]
	if e.ID != "ac62dbc4-c94e-45e4-a16e-381c51c8de38" || e.Type != "TOPUP.SETTLED" ||
		!e.CreatedAt.Equal(time.Date(2022, 12, 5, 12, 34, 56, 0, time.UTC)) ||
		e.WebhookID != "9df39835-be87-4243-9018-f2500b39cee6" ||
		e.AccountGroupID != "2a761567-251b-450e-8615-025d61dcc95e" {
		t.Errorf("event 0 = %+v", e)
	}
	if e.Family() != "TOPUP" || e.Status() != "SETTLED" {
		t.Errorf("family/status = %s/%s", e.Family(), e.Status())
	}
	var obj map[string]any
	if err := json.Unmarshal(e.Object, &obj); err != nil || obj["cash_amount"] != "100.01" {
		t.Errorf("object = %s (%v)", e.Object, err)
	}
	if evs[1].AccountGroupID != "" || evs[1].WebhookID != "" {
		t.Errorf("event 1 = %+v", evs[1])
	}
	if got := eventSubject("upvest.events", &evs[0]); got != "upvest.events.topup.settled.2a761567-251b-450e-8615-025d61dcc95e" {
		t.Errorf("subject = %s", got)
	}
	if got := eventSubject("upvest.events", &evs[1]); got != "upvest.events.direct_debit.new._" {
		t.Errorf("subject = %s", got)
	}
}

func TestParseEventRejects(t *testing.T) {
	good := `{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"TOPUP.SETTLED","object":{}}`
	with := func(field, value string) string {
		var m map[string]json.RawMessage
		json.Unmarshal([]byte(good), &m)
		if value == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, event string
		field       string
	}{
		{"not json", `{"id":`, ""},
		{"not an object", `1`, ""},
		{"an array", `[]`, ""},
		{"id missing", with("id", ""), "id"},
		{"id number", with("id", "1"), "id"},
		{"id not uuid", with("id", `"abc"`), "id"},
		{"id urn", with("id", `"urn:uuid:ac62dbc4-c94e-45e4-a16e-381c51c8de38"`), "id"},
		{"type missing", with("type", ""), "type"},
		{"type no dot", with("type", `"TOPUP"`), "type"},
		{"type family lower", with("type", `"topup.SETTLED"`), "type"},
		{"type family empty", with("type", `".SETTLED"`), "type"},
		{"type family wildcard", with("type", `"*.SETTLED"`), "type"},
		{"type lower", with("type", `"TOPUP.settled"`), "type"},
		{"type extra dot", with("type", `"TOPUP.SETTLED.X"`), "type"},
		{"created_at missing", with("created_at", ""), "created_at"},
		{"created_at bad", with("created_at", `"yesterday"`), "created_at"},
		{"created_at without offset", with("created_at", `"2022-12-05T12:34:56"`), "created_at"},
		{"created_at bad month", with("created_at", `"2022-13-05T12:34:56Z"`), "created_at"},
		// Valid RFC 3339, but in UTC outside the four-digit years the log
		// stores created_at in.
		{"created_at before year 0 in UTC", with("created_at", `"0000-01-01T00:30:00+01:00"`), "created_at"},
		{"created_at after year 9999 in UTC", with("created_at", `"9999-12-31T23:30:00-01:00"`), "created_at"},
		{"object missing", with("object", ""), "object"},
		{"object array", with("object", "[]"), "object"},
		{"object string", with("object", `"{}"`), "object"},
		{"account group number", with("object", `{"account_group_id":5}`), "object.account_group_id"},
		{"account group empty", with("object", `{"account_group_id":""}`), "object.account_group_id"},
		{"account group not uuid", with("object", `{"account_group_id":"a.b.>"}`), "object.account_group_id"},
		{"webhook id bad", with("webhook_id", `"x"`), "webhook_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEvent([]byte(tt.event))
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DeliveryError", err)
			}
			if de.Field != tt.field {
				t.Errorf("error at %q, want %q (%v)", de.Field, tt.field, err)
			}
		})
	}
}

func TestParseEventAccepts(t *testing.T) {
	for name, event := range map[string]string{
		"extra fields":   `{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"TOPUP.SETTLED","object":{},"extra":1}`,
		"unknown status": `{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56+02:00","type":"TOPUP.REVERSED_2","object":{}}`,
		// A category the gateway does not know is stored under its own
		// family's subject, not refused.
		"unknown family":     `{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"ORDER.FILLED","object":{}}`,
		"null account group": `{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"CASH_BALANCE.UPDATED","object":{"account_group_id":null}}`,
		"null webhook id":    `{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"CASH_BALANCE.UPDATED","object":{},"webhook_id":null}`,
	} {
		if _, err := ParseEvent([]byte(event)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, e := range parseSamples(t) {
		b, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseEvent(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !sameEvent(e, back) {
			t.Errorf("round trip: %+v != %+v", back, e)
		}
	}
}

func sameEvent(a, b Event) bool {
	return a.ID == b.ID && a.Type == b.Type && a.CreatedAt.Equal(b.CreatedAt) && a.WebhookID == b.WebhookID &&
		a.AccountGroupID == b.AccountGroupID && string(a.Object) == string(b.Object)
}
