package webhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/upvest-gateway/gateway/internal/events"
)

// FuzzParseDelivery: reading any body never panics; a body that is not a
// delivery is an envelope error; otherwise every event is either valid
// (and re-validates from the form the log stores) or carries a
// *events.DeliveryError naming its own index, and a quarantine record can
// be made of it.
func FuzzParseDelivery(f *testing.F) {
	f.Add([]byte(`{"payload":[]}`))
	f.Add([]byte(`{"payload":[{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56.5+01:00","type":"CASH_BALANCE.UPDATED","object":{"account_group_id":"2a761567-251b-450e-8615-025d61dcc95e","balance":"1.00"},"webhook_id":"9df39835-be87-4243-9018-f2500b39cee6"}]}`))
	f.Add([]byte(`{"payload":[{"id":"ac62dbc4-c94e-45e4-a16e-381c51c8de38","created_at":"2022-12-05T12:34:56","type":"TOPUP.X","object":{"account_group_id":""},"webhook_id":"x"},1,null,"s"]}`))
	f.Add([]byte(`{"payload":[{"id":1}]}`))
	f.Add([]byte(`{"payload":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := parseEnvelope(body)
		if err != nil {
			var de *events.DeliveryError
			if !errors.As(err, &de) || de.Index != -1 || raws != nil {
				t.Fatalf("envelope error %v with %d events", err, len(raws))
			}
			return
		}
		for _, it := range judge(raws) {
			if it.err != nil {
				var de *events.DeliveryError
				if !errors.As(it.err, &de) || de.Index != it.index {
					t.Fatalf("event %d: error %v does not name it", it.index, it.err)
				}
				rec := record(it.raw, it.index, reasonOf(it.err), "kid")
				if rec.Size != len(it.raw) || len(rec.ID) != 32 || !strings.HasPrefix(rec.Reason, "payload[") {
					t.Fatalf("event %d: record %+v", it.index, rec)
				}
				continue
			}
			stored, err := it.event.MarshalJSON()
			if err != nil {
				t.Fatalf("event %d: %v", it.index, err)
			}
			back, err := events.ParseEvent(stored)
			if err != nil || back.ID != it.event.ID || back.WebhookID != it.webhookID {
				t.Fatalf("event %d does not read back: %v", it.index, err)
			}
			if it.webhookID != "" {
				if _, ok := events.CanonicalUUID(it.webhookID); !ok {
					t.Fatalf("event %d: webhook id %q", it.index, it.webhookID)
				}
			}
		}
	})
}

// FuzzParseWebhookIDs: any setting value parses without panic into
// canonical, distinct UUIDs that parse back to themselves.
func FuzzParseWebhookIDs(f *testing.F) {
	f.Add("")
	f.Add("9df39835-be87-4243-9018-f2500b39cee6")
	f.Add("9DF39835-BE87-4243-9018-F2500B39CEE6, 1b097e06-8a14-4181-b72a-de0972a3c57b\n")
	f.Add("urn:uuid:9df39835-be87-4243-9018-f2500b39cee6")
	f.Fuzz(func(t *testing.T, v string) {
		ids, err := ParseWebhookIDs(v)
		if err != nil {
			return
		}
		again, err := ParseWebhookIDs(strings.Join(ids, ","))
		if err != nil || strings.Join(again, ",") != strings.Join(ids, ",") {
			t.Fatalf("%q -> %v -> %v, %v", v, ids, again, err)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if c, ok := events.CanonicalUUID(id); !ok || c != id || seen[id] {
				t.Fatalf("%q: id %q not canonical or repeated", v, id)
			}
			seen[id] = true
		}
		if _, err := NewSubscriptions(ids...); err != nil {
			t.Fatal(err)
		}
	})
}
