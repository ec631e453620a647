package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const sampleDelivery = `{"payload":[
{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"TOPUP.SETTLED",
 "object":{"id":"a4496ff8-ce69-4e23-9f2e-6c3c7914b95c","account_group_id":"2A761567-251B-450E-8615-025D61DCC95E",
 "settlement_reference":"91a44df3","cash_amount":"100.01","currency":"EUR","created_at":"2022-12-05T12:34:56Z","status":"SETTLED"},
 "webhook_id":"9df39835-be87-4243-9018-f2500b39cee6"},
{"created_at":"2021-07-21T14:10:00.00Z","id":"8962b496-8d42-4560-bfab-10490dd1a721","type":"DIRECT_DEBIT.NEW",
 "object":{"cash_amount":"200.00","status":"NEW"}}
]}`

func TestParseDeliverySample(t *testing.T) {
	evs, err := ParseDelivery([]byte(sampleDelivery))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
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

func TestParseDeliveryRejects(t *testing.T) {
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
		name, body string
		index      int
		field      string
	}{
		{"not json", `{"payload":[`, -1, ""},
		{"not an object", `[1]`, -1, ""},
		{"no payload", `{}`, -1, "payload"},
		{"payload not array", `{"payload":{}}`, -1, "payload"},
		{"event not object", `{"payload":[` + good + `,1]}`, 1, ""},
		{"id missing", `{"payload":[` + with("id", "") + `]}`, 0, "id"},
		{"id number", `{"payload":[` + with("id", "1") + `]}`, 0, "id"},
		{"id not uuid", `{"payload":[` + with("id", `"abc"`) + `]}`, 0, "id"},
		{"id urn", `{"payload":[` + with("id", `"urn:uuid:ac62dbc4-c94e-45e4-a16e-381c51c8de38"`) + `]}`, 0, "id"},
		{"type missing", `{"payload":[` + with("type", "") + `]}`, 0, "type"},
		{"type no dot", `{"payload":[` + with("type", `"TOPUP"`) + `]}`, 0, "type"},
		{"type family lower", `{"payload":[` + with("type", `"topup.SETTLED"`) + `]}`, 0, "type"},
		{"type family empty", `{"payload":[` + with("type", `".SETTLED"`) + `]}`, 0, "type"},
		{"type family wildcard", `{"payload":[` + with("type", `"*.SETTLED"`) + `]}`, 0, "type"},
		{"type lower", `{"payload":[` + with("type", `"TOPUP.settled"`) + `]}`, 0, "type"},
		{"type extra dot", `{"payload":[` + with("type", `"TOPUP.SETTLED.X"`) + `]}`, 0, "type"},
		{"created_at missing", `{"payload":[` + with("created_at", "") + `]}`, 0, "created_at"},
		{"created_at bad", `{"payload":[` + with("created_at", `"yesterday"`) + `]}`, 0, "created_at"},
		// Valid RFC 3339, but in UTC outside the four-digit years the log
		// stores created_at in.
		{"created_at before year 0 in UTC", `{"payload":[` + good + `,` + with("created_at", `"0000-01-01T00:30:00+01:00"`) + `]}`, 1, "created_at"},
		{"created_at after year 9999 in UTC", `{"payload":[` + with("created_at", `"9999-12-31T23:30:00-01:00"`) + `]}`, 0, "created_at"},
		{"object missing", `{"payload":[` + with("object", "") + `]}`, 0, "object"},
		{"object array", `{"payload":[` + with("object", "[]") + `]}`, 0, "object"},
		{"object string", `{"payload":[` + with("object", `"{}"`) + `]}`, 0, "object"},
		{"account group number", `{"payload":[` + with("object", `{"account_group_id":5}`) + `]}`, 0, "object.account_group_id"},
		{"account group not uuid", `{"payload":[` + with("object", `{"account_group_id":"a.b.>"}`) + `]}`, 0, "object.account_group_id"},
		{"webhook id bad", `{"payload":[` + with("webhook_id", `"x"`) + `]}`, 0, "webhook_id"},
		{"bad among good", `{"payload":[` + good + `,` + good + `,` + with("created_at", `"2022-13-05T12:34:56Z"`) + `]}`, 2, "created_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDelivery([]byte(tt.body))
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DeliveryError", err)
			}
			if de.Index != tt.index || de.Field != tt.field {
				t.Errorf("error at %d/%q, want %d/%q (%v)", de.Index, de.Field, tt.index, tt.field, err)
			}
			if tt.index >= 0 && !strings.Contains(err.Error(), "payload[") {
				t.Errorf("error %q does not name the index", err)
			}
		})
	}
}

func TestParseDeliveryAccepts(t *testing.T) {
	for name, body := range map[string]string{
		"empty payload":  `{"payload":[]}`,
		"extra fields":   `{"payload":[],"extra":1}`,
		"unknown status": `{"payload":[{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56+02:00","type":"TOPUP.REVERSED_2","object":{}}]}`,
		// A category the gateway does not know: refusing it would make Upvest
		// retry the delivery forever and hold back every later one.
		"unknown family":     `{"payload":[{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"ORDER.FILLED","object":{}}]}`,
		"null account group": `{"payload":[{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56Z","type":"CASH_BALANCE.UPDATED","object":{"account_group_id":null}}]}`,
	} {
		if _, err := ParseDelivery([]byte(body)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	evs, err := ParseDelivery([]byte(sampleDelivery))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
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
