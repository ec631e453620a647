package events

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
)

// An event Append cannot encode must fail the whole call before anything is
// published, with a final error naming its index; otherwise the events
// before it are stored on every retry of a delivery that never succeeds.
func TestAppendUnencodableEventStoresNothing(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		ag := uuid.NewString()
		for _, created := range []time.Time{
			time.Date(-1, 12, 31, 23, 30, 0, 0, time.UTC), // "0000-01-01T00:30:00+01:00"
			time.Date(10000, 1, 1, 0, 30, 0, 0, time.UTC), // "9999-12-31T23:30:00-01:00"
		} {
			evs := makeEvents(t, 3, "TOPUP.SETTLED", ag)
			evs[2].CreatedAt = created
			err := l.Append(context.Background(), evs)
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Append = %v, want a *DeliveryError", err)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("Append = %v: an event that can never be stored is not ErrUnavailable", err)
			}
			if de.Index != 2 || !strings.Contains(err.Error(), "payload[2]") {
				t.Errorf("Append = %v, want it to name payload[2]", err)
			}
		}
		// Let anything published in error reach the stream before counting.
		time.Sleep(100 * time.Millisecond)
		if n := storedCount(t, l); n != 0 {
			t.Fatalf("%d events stored by failed appends", n)
		}
	})
}

// Append validates again an event changed after ParseEvent, however
// little: the change may make it unstorable, or move it to another subject.
func TestAppendRevalidatesChangedEvents(t *testing.T) {
	t.Parallel()
	l := openBackend(t, eventstest.Backend{Name: "embedded"})
	ag := uuid.NewString()
	for name, change := range map[string]func(e *Event){
		"id":           func(e *Event) { e.ID = "not-a-uuid" },
		"type":         func(e *Event) { e.Type = "topup.settled" },
		"webhook id":   func(e *Event) { e.WebhookID = "nope" },
		"object":       func(e *Event) { e.Object = []byte(`[1]`) },
		"object bytes": func(e *Event) { copy(e.Object, "[") },
	} {
		evs := makeEvents(t, 2, "TOPUP.SETTLED", ag)
		change(&evs[1])
		err := l.Append(context.Background(), evs)
		if de := (*DeliveryError)(nil); !errors.As(err, &de) || de.Index != 1 {
			t.Errorf("%s: Append = %v, want a *DeliveryError for payload[1]", name, err)
		}
	}

	// The object still names ag: the event is stored under ag, not where
	// the changed field says.
	other := uuid.NewString()
	mine, theirs := startWatch(t, l, Filter{AccountGroupID: ag}, ""), startWatch(t, l, Filter{AccountGroupID: other}, "")
	evs := makeEvents(t, 1, "TOPUP.SETTLED", ag)
	evs[0].AccountGroupID = other
	mustAppend(t, l, evs)
	if got := mine.events(t, 1)[0].Event; got.ID != evs[0].ID || got.AccountGroupID != ag {
		t.Errorf("stored as %+v, want under %s", got, ag)
	}
	theirs.quiet(t, 200*time.Millisecond)
}
