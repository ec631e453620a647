package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Event families: the part of an upstream event type before the dot, and the
// webhook categories the gateway subscribes to.
const (
	FamilyVirtualCashIncrease = "VIRTUAL_CASH_INCREASE"
	FamilyVirtualCashDecrease = "VIRTUAL_CASH_DECREASE"
	FamilyTopup               = "TOPUP"
	FamilyDirectDebit         = "DIRECT_DEBIT"
	FamilyWithdrawal          = "WITHDRAWAL"
	FamilyCashBalance         = "CASH_BALANCE"
)

var knownFamilies = map[string]bool{
	FamilyVirtualCashIncrease: true,
	FamilyVirtualCashDecrease: true,
	FamilyTopup:               true,
	FamilyDirectDebit:         true,
	FamilyWithdrawal:          true,
	FamilyCashBalance:         true,
}

// maxWordLen bounds each part of a type; upstream's longest is 26
// (INTRADAY_ACCOUNT_VALUATION).
const maxWordLen = 64

// Event is one upstream webhook event.
type Event struct {
	ID        string    // upstream event id, a UUID in canonical lower-case form
	Type      string    // e.g. "TOPUP.SETTLED"
	CreatedAt time.Time // when upstream created the event
	WebhookID string    // the upstream webhook subscription, "" if absent
	// Object is the resource as upstream sent it (same shape as the REST
	// resource), compacted but otherwise untouched, so no field is lost.
	Object json.RawMessage
	// AccountGroupID is object.account_group_id in canonical form, "" when
	// the object has none.
	AccountGroupID string

	// validated is the event as parseEvent accepted it, its object copied:
	// while the fields above still equal it, Append knows the event's
	// encoding reads back as itself (FuzzParseEvent holds parseEvent to
	// that) and need not validate it again.
	validated *Event
}

// unchangedSinceParse reports whether e is exactly as parseEvent accepted
// it.
func (e *Event) unchangedSinceParse() bool {
	v := e.validated
	return v != nil && e.ID == v.ID && e.Type == v.Type && e.CreatedAt.Equal(v.CreatedAt) &&
		e.WebhookID == v.WebhookID && e.AccountGroupID == v.AccountGroupID && bytes.Equal(e.Object, v.Object)
}

// Family returns the part of Type before the dot, e.g. "TOPUP".
func (e *Event) Family() string {
	f, _, _ := strings.Cut(e.Type, ".")
	return f
}

// Status returns the part of Type after the dot, e.g. "SETTLED".
func (e *Event) Status() string {
	_, s, _ := strings.Cut(e.Type, ".")
	return s
}

// wireEvent is an event in upstream's shape, as the log stores it.
type wireEvent struct {
	ID        string          `json:"id"`
	CreatedAt string          `json:"created_at"`
	Type      string          `json:"type"`
	Object    json.RawMessage `json:"object"`
	WebhookID string          `json:"webhook_id,omitempty"`
}

// MarshalJSON writes the event in upstream's shape; the log stores exactly
// this, and parseEvent reads it back.
func (e Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep the object's bytes as upstream sent them
	err := enc.Encode(wireEvent{
		ID:        e.ID,
		CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano),
		Type:      e.Type,
		Object:    e.Object,
		WebhookID: e.WebhookID,
	})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// DeliveryError says which event of a delivery is malformed and why. It never
// carries field values: the caller may log or return it as is.
type DeliveryError struct {
	Index  int    // position in payload; -1 for the envelope
	Field  string // e.g. "created_at"; "" for the whole event or envelope
	Reason string
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("events: ")
	if e.Index >= 0 {
		fmt.Fprintf(&b, "payload[%d]", e.Index)
		if e.Field != "" {
			b.WriteString(".")
		}
	}
	b.WriteString(e.Field)
	if e.Index >= 0 || e.Field != "" {
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// ParseEvent validates one upstream event, as a webhook delivery holds it
// (internal/webhook reads the delivery's envelope): id a UUID, type
// FAMILY.STATUS (upper-case words), created_at RFC 3339 within the years
// 0000-9999 in UTC, webhook_id a UUID when present, object a JSON object
// whose account_group_id, when present, is a UUID. Unknown fields are
// ignored, as upstream may add some. Its errors are *DeliveryError naming
// the field at fault, with Index 0 for the caller to set; they never quote
// a value.
func ParseEvent(data []byte) (Event, error) {
	return parseEvent(data)
}

// parseEvent validates one event. It is also how the log reads back what
// it stored, so stored and delivered events obey the same rules.
func parseEvent(data []byte) (Event, error) {
	bad := func(field, reason string) (Event, error) {
		return Event{}, &DeliveryError{Field: field, Reason: reason}
	}
	if !isJSON(data, '{') {
		return bad("", "not a JSON object")
	}
	// Field by field, so that an error names the field at fault.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return bad("", "malformed event")
	}
	str := func(name string) (string, bool) {
		var s string
		raw, ok := fields[name]
		if !ok || json.Unmarshal(raw, &s) != nil || string(raw) == "null" {
			return "", false
		}
		return s, true
	}

	var e Event
	s, ok := str("id")
	if !ok {
		return bad("id", "missing or not a string")
	}
	if e.ID, ok = CanonicalUUID(s); !ok {
		return bad("id", "not a UUID")
	}
	if e.Type, ok = str("type"); !ok {
		return bad("type", "missing or not a string")
	}
	if reason := validType(e.Type); reason != "" {
		return bad("type", reason)
	}
	if s, ok = str("created_at"); !ok {
		return bad("created_at", "missing or not a string")
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return bad("created_at", "not an RFC 3339 date-time")
	}
	if y := ts.UTC().Year(); y < 0 || y > 9999 {
		// RFC 3339 has four-digit years, and the log stores created_at in
		// UTC: an offset must not carry it out of 0000..9999.
		return bad("created_at", "outside the years 0000 to 9999 in UTC")
	}
	e.CreatedAt = ts
	if raw, present := fields["webhook_id"]; present && string(raw) != "null" {
		if s, ok = str("webhook_id"); !ok {
			return bad("webhook_id", "not a string")
		}
		if e.WebhookID, ok = CanonicalUUID(s); !ok {
			return bad("webhook_id", "not a UUID")
		}
	}
	obj := fields["object"]
	if !isJSON(obj, '{') {
		return bad("object", "missing or not a JSON object")
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(obj, &inner); err != nil {
		return bad("object", "malformed object")
	}
	if raw, present := inner["account_group_id"]; present && string(raw) != "null" {
		if err := json.Unmarshal(raw, &s); err != nil {
			return bad("object.account_group_id", "not a string")
		}
		if e.AccountGroupID, ok = CanonicalUUID(s); !ok {
			return bad("object.account_group_id", "not a UUID")
		}
	}
	e.Object = compactCopy(obj)
	snapshot := e
	snapshot.Object = bytes.Clone(e.Object)
	e.validated = &snapshot
	return e, nil
}

// validType checks the shape FAMILY.STATUS. Neither part is checked
// against the known ones: a status or a whole category Upvest adds later must
// not make the delivery fail, since Upvest would retry it forever and hold
// back every later one. An event of an unknown family is stored under its own
// family's subject, where no Watch RPC looks, until the gateway learns it.
func validType(t string) string {
	fam, status, ok := strings.Cut(t, ".")
	if !ok {
		return "not of the form FAMILY.STATUS"
	}
	if !validWord(fam) {
		return "family is not an upper-case word"
	}
	if !validWord(status) {
		return "status is not an upper-case word"
	}
	return ""
}

// validWord is an upper-case word of letters, digits and underscores, which
// is also a safe subject token once lower-cased.
func validWord(s string) bool {
	if s == "" || len(s) > maxWordLen || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// CanonicalUUID accepts only the 36-character hyphenated form (uuid.Parse
// also takes URNs and braces) and returns it lower-cased, so that the same id
// always de-duplicates and always lands on the same subject.
func CanonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// isJSON reports whether data is valid JSON whose first token opens with
// open ('{' or '[').
func isJSON(data []byte, open byte) bool {
	d := bytes.TrimLeft(data, " \t\r\n")
	return len(d) > 0 && d[0] == open && json.Valid(d)
}

func compactCopy(data []byte) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return append(json.RawMessage(nil), data...)
	}
	return b.Bytes()
}
