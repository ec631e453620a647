package upvestsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// timeLayout renders timestamps in RFC 3339 UTC with a fixed microsecond
// fraction, so event times are visibly sub-second and sort as strings.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// timestamp is a time rendered with timeLayout in resource JSON.
type timestamp time.Time

func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timeLayout) + `"`), nil
}

func (t timestamp) time() time.Time { return time.Time(t) }

// Event is a webhook event: the state change of one resource, with the
// resource as the REST API renders it. WebhookID is the subscription it was
// first queued for ("" when no subscription matched); each delivery carries
// its own subscription's id.
type Event struct {
	ID        string          `json:"id"`
	CreatedAt time.Time       `json:"created_at"`
	Type      string          `json:"type"`
	Object    json.RawMessage `json:"object"`
	WebhookID string          `json:"webhook_id"`

	raw json.RawMessage // EmitRaw: delivered exactly so
}

// MarshalJSON renders created_at with timeLayout, as deliveries do; an
// event of EmitRaw is rendered as it was given.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.raw != nil {
		return e.raw, nil
	}
	type plain Event
	return json.Marshal(struct {
		plain
		CreatedAt timestamp `json:"created_at"`
	}{plain(e), timestamp(e.CreatedAt)})
}

// category is the webhook subscription category of an event type, e.g.
// TOPUP for TOPUP.SETTLED.
func category(eventType string) string {
	c, _, _ := strings.Cut(eventType, ".")
	return c
}

// emit records an event and queues it for every enabled subscription whose
// categories match; s.mu must be held. created_at strictly increases, so
// events order by time even when the clock stands still.
func (s *Sim) emit(eventType string, object any) {
	raw, err := json.Marshal(object)
	if err != nil {
		panic("upvestsim: marshal event object: " + err.Error())
	}
	at := s.now()
	if !at.After(s.lastEventAt) {
		at = s.lastEventAt.Add(time.Microsecond)
	}
	s.lastEventAt = at
	ev := Event{ID: s.ids.uuid(), CreatedAt: at, Type: eventType, Object: raw}
	for _, sub := range s.subs {
		if sub.wants(ev.Type) {
			if ev.WebhookID == "" {
				ev.WebhookID = sub.json.ID
			}
			sub.enqueue(ev)
		}
	}
	s.events = append(s.events, ev)
}

// EmitRaw queues raw, the JSON of one event exactly as it is to be
// delivered, for every enabled subscription that wants its type (one of
// every category when the type cannot be read): the way to make the
// simulator deliver what Upvest should not, such as a malformed event, in
// its ordinary batches, retried and holding back later ones as Upvest
// does. Its webhook_id is left as raw has it.
func (s *Sim) EmitRaw(raw json.RawMessage) error {
	if !json.Valid(raw) {
		return errors.New("upvestsim: EmitRaw: not JSON")
	}
	var probe struct {
		ID     string          `json:"id"`
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	_ = json.Unmarshal(raw, &probe) // what can be read, for Events
	ev := Event{ID: probe.ID, Type: probe.Type, Object: probe.Object, raw: bytes.Clone(raw)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.wants(ev.Type) {
			sub.enqueue(ev)
		}
	}
	s.events = append(s.events, ev)
	return nil
}

// Events returns every event emitted so far, in order.
func (s *Sim) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(make([]Event, 0, len(s.events)), s.events...)
}
