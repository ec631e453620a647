package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/logtest"
)

// openQuarantine opens the quarantine of l (deleted with the test on an
// external NATS).
func openQuarantine(t *testing.T, be eventstest.Backend, l *Log) *Quarantine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := OpenQuarantine(ctx, l.broker, l.Config(), WithLogger(logtest.Logger(t)))
	if err != nil {
		t.Fatalf("OpenQuarantine: %v", err)
	}
	if be.URL != "" {
		t.Cleanup(func() { deleteStream(t, be.URL, q.Stream()) })
	}
	return q
}

func rawJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Records are stored with their raw bytes, including raw bytes several times
// larger than one NATS message; adding a record again (Upvest retrying the
// delivery) stores it once; listing pages through them oldest first.
func TestQuarantineStoresRecords(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		q := openQuarantine(t, be, l)
		ctx := context.Background()

		small := NewQuarantinedEvent([]byte(`{"id":"x"}`), 1, "payload[1].id: not a UUID")
		small.EventID, small.KeyID = "x", "kid-1"
		huge := make([]byte, 2*int(l.nc.MaxPayload())+12345)
		for i := range huge {
			huge[i] = byte('a' + i%26)
		}
		big := NewQuarantinedEvent(huge, 0, "payload[0]: too large for the event log")
		empty := NewQuarantinedEvent(nil, -1, "body: not a JSON object")
		for range 2 {
			if err := q.Add(ctx, small, big, empty); err != nil {
				t.Fatalf("Add: %v", err)
			}
		}

		for _, want := range []QuarantinedEvent{small, big, empty} {
			got, err := q.Get(ctx, want.ID)
			if err != nil {
				t.Fatalf("Get(%s): %v", want.ID, err)
			}
			if !bytes.Equal(got.Raw, want.Raw) || got.Reason != want.Reason || got.Index != want.Index || got.Size != len(want.Raw) ||
				got.EventID != want.EventID || got.KeyID != want.KeyID || got.ReceivedAt.IsZero() {
				t.Errorf("Get(%s) = %+v (raw %d bytes), want %+v", want.ID, got, len(got.Raw), want)
			}
		}
		if _, err := q.Get(ctx, strings.Repeat("0", 32)); !errors.Is(err, ErrNotQuarantined) {
			t.Errorf("Get of an unknown id = %v, want ErrNotQuarantined", err)
		}
		if _, err := q.Get(ctx, "../x"); !errors.Is(err, ErrNotQuarantined) {
			t.Errorf("Get of a malformed id = %v, want ErrNotQuarantined", err)
		}

		var listed []string
		page := ""
		for {
			recs, next, err := q.List(ctx, page, 2)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			for _, r := range recs {
				if r.Raw != nil {
					t.Errorf("List returned raw bytes of %s", r.ID)
				}
				listed = append(listed, r.ID)
			}
			if next == "" {
				break
			}
			page = next
		}
		if strings.Join(listed, ",") != strings.Join([]string{small.ID, big.ID, empty.ID}, ",") {
			t.Errorf("listed %v, want each record once, oldest first", listed)
		}
		if _, _, err := q.List(ctx, "x", 2); err == nil {
			t.Error("List with a bad position succeeded")
		}
	})
}

// A record whose id does not match its raw bytes is refused: ids are how a
// retry is recognised.
func TestQuarantineRefusesForgedID(t *testing.T) {
	l := openBackend(t, eventstest.Backend{Name: "embedded"})
	q := openQuarantine(t, eventstest.Backend{}, l)
	rec := NewQuarantinedEvent([]byte(`{}`), 0, "r")
	rec.Raw = []byte(`{"other":1}`)
	if err := q.Add(context.Background(), rec); err == nil {
		t.Fatal("Add of a record whose id does not match its raw bytes succeeded")
	}
}

// Re-injecting: the raw bytes as received still fail (the record stays);
// an operator's corrected event is appended and reaches a subscriber; doing
// it again stores it once; the record notes the re-injection.
func TestQuarantineReinject(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		l := openBackend(t, be)
		q := openQuarantine(t, be, l)
		ctx := context.Background()
		ag := uuid.NewString()
		s := startWatch(t, l, Filter{AccountGroupID: ag}, "")

		bad := rawEvent("TOPUP.SETTLED", ag)
		bad["created_at"] = "2026-01-02T10:00:00" // no offset
		raw := rawJSON(t, bad)
		rec := NewQuarantinedEvent(raw, 0, "payload[0].created_at: not an RFC 3339 date-time")
		if err := q.Add(ctx, rec); err != nil {
			t.Fatal(err)
		}

		_, err := q.Reinject(ctx, l, rec.ID, nil)
		var de *DeliveryError
		if !errors.As(err, &de) || de.Field != "created_at" {
			t.Fatalf("Reinject as received = %v, want a *DeliveryError on created_at", err)
		}
		if _, err := q.Reinject(ctx, l, strings.Repeat("a", 32), nil); !errors.Is(err, ErrNotQuarantined) {
			t.Fatalf("Reinject of an unknown id = %v", err)
		}

		bad["created_at"] = "2026-01-02T10:00:00Z"
		fixed := rawJSON(t, bad)
		for range 2 {
			e, err := q.Reinject(ctx, l, rec.ID, fixed)
			if err != nil {
				t.Fatalf("Reinject fixed: %v", err)
			}
			if e.ID != bad["id"] {
				t.Fatalf("re-injected event %s, want %s", e.ID, bad["id"])
			}
		}
		equalIDs(t, msgIDs(s.events(t, 1)), []string{bad["id"].(string)})
		s.quiet(t, 300*time.Millisecond)
		if n := storedCount(t, l); n != 1 {
			t.Fatalf("%d events stored, want 1", n)
		}
		got, err := q.Get(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ReinjectedAt.IsZero() || got.ReinjectedEventID != bad["id"] {
			t.Errorf("record after re-injection: %+v", got)
		}
	})
}

// FuzzQuarantineRecord: any stored bytes decode without panic, and a record
// that decodes encodes back to one that decodes the same.
func FuzzQuarantineRecord(f *testing.F) {
	rec := NewQuarantinedEvent([]byte(`{"id":"x"}`), 1, "payload[1].id: not a UUID")
	good, _ := json.Marshal(quarantineRecord{V: 1, ID: rec.ID, Reason: rec.Reason, Index: 1, SHA256: rec.SHA256, Size: rec.Size,
		ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Chunks: []uint64{7}})
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"id":"00000000000000000000000000000000","sha256":"0000000000000000000000000000000000000000000000000000000000000000","index":-1,"size":0,"chunks":[1]} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeQuarantineRecord(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", r, err)
		}
		back, err := decodeQuarantineRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v\n%s", err, again)
		}
		if back.ID != r.ID || back.SHA256 != r.SHA256 || back.Size != r.Size || len(back.Chunks) != len(r.Chunks) || back.Index != r.Index {
			t.Fatalf("round trip changed %+v to %+v", r, back)
		}
	})
}
