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
