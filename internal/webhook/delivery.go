package webhook

import (
	"encoding/json"
	"strings"

	"github.com/upvest-gateway/gateway/internal/events"
)

// A delivery's body is {"payload": [event, ...]}. The envelope is read here,
// each event is judged on its own (events.ParseEvent): a valid one goes to
// the log, a malformed one to the quarantine, so that one bad event never
// makes the whole delivery fail. Upvest would retry a failed delivery forever
// and hold back every later one.

// parseEnvelope returns the raw events of a delivery body, unjudged. Its
// error (a *events.DeliveryError with Index -1) means the body is not a
// delivery at all.
func parseEnvelope(body []byte) ([]json.RawMessage, error) {
	var env struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &events.DeliveryError{Index: -1, Reason: "body is not a JSON object"}
	}
	if !strings.HasPrefix(strings.TrimLeft(string(env.Payload), " \t\r\n"), "[") {
		return nil, &events.DeliveryError{Index: -1, Field: "payload", Reason: "missing or not an array"}
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(env.Payload, &raw); err != nil {
		return nil, &events.DeliveryError{Index: -1, Field: "payload", Reason: "not an array"}
	}
	return raw, nil
}

// item is one event of a delivery on its way to the log or the quarantine.
type item struct {
	index int
	raw   json.RawMessage
	event events.Event // valid when err is nil
	err   error        // why it goes to the quarantine
	// webhookID is the subscription the event names, canonical; "" when it
	// names none or one that is not a UUID.
	webhookID string
}

// judge parses each raw event of a delivery.
func judge(raws []json.RawMessage) []item {
	items := make([]item, len(raws))
	for i, raw := range raws {
		it := item{index: i, raw: raw}
		var err error
		if it.event, err = events.ParseEvent(raw); err == nil {
			it.webhookID = it.event.WebhookID
		} else {
			it.err = withIndex(err, i)
			it.webhookID = readHints(raw).webhookID
		}
		items[i] = it
	}
	return items
}

// hints is what can be read of a malformed event: its id, type and webhook
// id when they are strings, the webhook id only when it is a UUID.
type hints struct {
	id, typ, webhookID string
}

func readHints(raw json.RawMessage) hints {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return hints{}
	}
	str := func(name string) string {
		var s string
		if json.Unmarshal(fields[name], &s) != nil {
			return ""
		}
		return s
	}
	h := hints{id: str("id"), typ: str("type")}
	if id, ok := events.CanonicalUUID(str("webhook_id")); ok {
		h.webhookID = id
	}
	return h
}

// record is the quarantine record of an item, or of the whole body (index -1).
func record(raw []byte, index int, reason, keyID string) events.QuarantinedEvent {
	rec := events.NewQuarantinedEvent(raw, index, reason)
	h := readHints(raw)
	rec.EventID, rec.Type, rec.WebhookID, rec.KeyID = h.id, h.typ, h.webhookID, keyID
	return rec
}
