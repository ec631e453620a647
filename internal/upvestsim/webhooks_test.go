package upvestsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/upvest-gateway/gateway/internal/upstream/httpsig"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
	"github.com/upvest-gateway/gateway/internal/upvestsim/simtest"
)

// received is one delivery as the receiver saw it.
type received struct {
	at     time.Time
	method string
	path   string
	header http.Header
	body   []byte
}

// payload decodes the delivery body.
func (d received) payload(t *testing.T) []upvestsim.Event {
	t.Helper()
	var p struct {
		Payload []upvestsim.Event `json:"payload"`
	}
	dec := json.NewDecoder(bytes.NewReader(d.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Payload == nil {
		t.Fatalf("delivery body %s: %v", d.body, err)
	}
	return p.Payload
}

// receiver is a webhook endpoint that answers with status(n) to the n-th
// delivery (1-based; default 200).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	status func(n int) int
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	rc := &receiver{status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{at: time.Now(), method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.status != nil {
			code = rc.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) deliveries() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// waitFor waits until the receiver got n deliveries.
func (rc *receiver) waitFor(t *testing.T, n int) []received {
	t.Helper()
	eventually(t, "webhook deliveries", func() bool { return len(rc.deliveries()) >= n })
	return rc.deliveries()
}

// jwks fetches the webhook keys the way a client does.
func (e *env) jwks(t *testing.T) httpsig.KeyResolver {
	t.Helper()
	r := e.get(t, "/auth/verify_keys", simtest.Token(e.c.MustToken(t, "webhooks:read")))
	want(t, r, http.StatusOK)
	keys, err := httpsig.ParseJWKS(r.Body)
	if err != nil {
		t.Fatalf("JWKS %s: %v", r.Body, err)
	}
	var set httpsig.JWKS
	if err := json.Unmarshal(r.Body, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Kty != "EC" || set.Keys[0].Crv != "P-521" || set.Keys[0].Kid != e.sim.WebhookKeyID() {
		t.Fatalf("JWKS %s", r.Body)
	}
	return httpsig.StaticKeys(keys)
}

// verify checks a delivery's signature against keys.
func verify(t *testing.T, d received, keys httpsig.KeyResolver) (*httpsig.Verified, error) {
	t.Helper()
	req := httptest.NewRequest(d.method, d.path, bytes.NewReader(d.body))
	req.Header = d.header.Clone()
	return httpsig.Verify(t.Context(), req, d.body, keys, httpsig.VerifyOptions{Required: []string{"@method", "@path", "content-type", "digest"}})
}

func webhookEnv(t *testing.T, url string, opts ...envOption) *env {
	return newEnv(t, append([]envOption{withConfig(func(c *upvestsim.Config) { c.WebhookURL = url })}, opts...)...)
}

func TestWebhookDeliverySignedAndVerifiable(t *testing.T) {
	rc := newReceiver(t, nil)
	e := webhookEnv(t, rc.srv.URL+"/hooks/upvest")
	keys := e.jwks(t)
	e.create(t, "/payments/topups", topup(group1, "25.00"))
	e.sim.Advance()
	eventually(t, "every event delivered", func() bool {
		n := 0
		for _, d := range rc.deliveries() {
			n += len(d.payload(t))
		}
		return n == 4
	})
	got := rc.deliveries()

	var delivered []upvestsim.Event
	for _, d := range got {
		if d.method != http.MethodPost || d.path != "/hooks/upvest" || d.header.Get("Content-Type") != "application/json" || d.header.Get("Upvest-Signature-Version") != "6" {
			t.Fatalf("delivery %s %s headers %v", d.method, d.path, d.header)
		}
		v, err := verify(t, d, keys)
		if err != nil {
			t.Fatalf("delivery signature: %v", err)
		}
		if v.Version != 6 || v.KeyID != e.sim.WebhookKeyID() {
			t.Fatalf("verified %+v", v)
		}
		events := d.payload(t)
		for i := 1; i < len(events); i++ {
			if !events[i].CreatedAt.After(events[i-1].CreatedAt) {
				t.Fatalf("delivery not ordered by created_at: %s", d.body)
			}
		}
		delivered = append(delivered, events...)

		// A changed body no longer verifies.
		tampered := d
		tampered.body = bytes.Replace(d.body, []byte("25.00"), []byte("95.00"), 1)
		if _, err := verify(t, tampered, keys); err == nil && !bytes.Equal(tampered.body, d.body) {
			t.Fatal("tampered delivery verified")
		}
	}
	all := e.sim.Events()
	if len(delivered) != len(all) {
		t.Fatalf("delivered %d events, emitted %d", len(delivered), len(all))
	}
	subID := all[0].WebhookID
	for i, ev := range delivered {
		if ev.ID != all[i].ID || ev.Type != all[i].Type || !bytes.Equal(ev.Object, all[i].Object) || ev.WebhookID != subID || subID == "" {
			t.Fatalf("delivered event %d %+v, emitted %+v", i, ev, all[i])
		}
	}
	wantEvents(t, eventTypes(e.sim), "TOPUP.CONFIRMED", "CASH_BALANCE.UPDATED", "TOPUP.SETTLED", "CASH_BALANCE.UPDATED")
	for _, rec := range e.sim.Deliveries() {
		if rec.Status != http.StatusOK || rec.WebhookID != subID || rec.Attempt != 1 {
			t.Fatalf("delivery record %+v", rec)
		}
	}
}

// Any answer but 200 makes the Sim send the same batch again, with backoff,
// and hold back later events until it is accepted.
func TestWebhookRetryUntil200(t *testing.T) {
	var e *env
	unit := 20 * time.Millisecond
	rc := newReceiver(t, func(n int) int {
		switch n {
		case 1:
			e.sim.Advance() // more events while the first batch is failing
			return http.StatusInternalServerError
		case 2:
			return http.StatusAccepted // 2xx but not 200 is a failure too
		}
		return http.StatusOK
	})
	e = webhookEnv(t, rc.srv.URL, withConfig(func(c *upvestsim.Config) { c.WebhookBackoffUnit = unit }))
	e.create(t, "/payments/topups", topup(group1, "25.00"))
	got := rc.waitFor(t, 4)
	time.Sleep(5 * unit)
	if got = rc.deliveries(); len(got) != 4 {
		t.Fatalf("%d deliveries, want 4", len(got))
	}
	if !bytes.Equal(got[0].body, got[1].body) || !bytes.Equal(got[1].body, got[2].body) {
		t.Fatalf("retries changed the batch:\n%s\n%s\n%s", got[0].body, got[1].body, got[2].body)
	}
	if gap := got[1].at.Sub(got[0].at); gap < unit {
		t.Fatalf("first retry after %v, want ≥ %v", gap, unit)
	}
	if gap := got[2].at.Sub(got[1].at); gap < 2*unit {
		t.Fatalf("second retry after %v, want ≥ %v", gap, 2*unit)
	}
	first, later := got[0].payload(t), got[3].payload(t)
	wantTypes := func(evs []upvestsim.Event, types ...string) {
		t.Helper()
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Type)
		}
		wantEvents(t, got, types...)
	}
	wantTypes(first, "TOPUP.CONFIRMED", "CASH_BALANCE.UPDATED")
	wantTypes(later, "TOPUP.SETTLED", "CASH_BALANCE.UPDATED")

	recs := e.sim.Deliveries()
	var statuses, attempts []int
	for _, r := range recs {
		statuses, attempts = append(statuses, r.Status), append(attempts, r.Attempt)
	}
	if !slices.Equal(statuses, []int{500, 202, 200, 200}) || !slices.Equal(attempts, []int{1, 2, 3, 1}) || !slices.Equal(recs[0].EventIDs, recs[2].EventIDs) {
		t.Fatalf("delivery records %+v", recs)
	}
}

// An unreachable receiver is retried like a failing one.
func TestWebhookTransportErrorRetried(t *testing.T) {
	rc := newReceiver(t, nil)
	url := rc.srv.URL
	rc.srv.Close() // nothing listens now
	e := webhookEnv(t, url)
	e.create(t, "/payments/topups", topup(group1, "1.00"))
	eventually(t, "failed attempts", func() bool { return len(e.sim.Deliveries()) >= 3 })
	for _, d := range e.sim.Deliveries() {
		if d.Status != 0 || d.Error == "" {
			t.Fatalf("delivery record %+v", d)
		}
	}
}

func TestWebhookBatching(t *testing.T) {
	rc := newReceiver(t, nil)
	e := webhookEnv(t, rc.srv.URL, withConfig(func(c *upvestsim.Config) { c.WebhookBatchSize = 3 }))
	e.sim.PauseWebhooks(true)
	for range 8 {
		e.create(t, "/payments/direct_debits", directDebit(group1, "1.00"))
	}
	time.Sleep(20 * time.Millisecond)
	if n := len(rc.deliveries()); n != 0 {
		t.Fatalf("%d deliveries while paused", n)
	}
	e.sim.PauseWebhooks(false)
	got := rc.waitFor(t, 3)
	var sizes []int
	var ids []string
	for _, d := range got {
		evs := d.payload(t)
		sizes = append(sizes, len(evs))
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
	}
	if !slices.Equal(sizes, []int{3, 3, 2}) {
		t.Fatalf("batch sizes %v, want [3 3 2]", sizes)
	}
	var emitted []string
	for _, ev := range e.sim.Events() {
		emitted = append(emitted, ev.ID)
	}
	if !slices.Equal(ids, emitted) {
		t.Fatalf("delivered %v, emitted %v", ids, emitted)
	}
}

func TestWebhookSubscriptions(t *testing.T) {
	all := newReceiver(t, nil)
	topups := newReceiver(t, nil)
	e := newEnv(t)

	// Created disabled; enabled and typed with PATCH.
	r := e.c.Do(t, http.MethodPost, "/webhooks", mustJSON(t, map[string]any{"title": "all", "url": all.srv.URL}), simtest.Token(e.tok))
	want(t, r, http.StatusCreated)
	sub := object(t, r)
	allID := sub["id"].(string)
	cfg := sub["config"].(map[string]any)
	if sub["enabled"] != false || !slices.Equal(toStrings(sub["type"]), []string{"ALL"}) || cfg["max_package_size"] != float64(10240) || cfg["delay"] != "5s" {
		t.Fatalf("created %s", r.Body)
	}
	r = e.c.Do(t, http.MethodPost, "/webhooks", mustJSON(t, map[string]any{"title": "topups", "url": topups.srv.URL, "type": []string{"TOPUP"}, "config": map[string]any{"max_package_size": 100}}),
		simtest.Token(e.tok), simtest.IdempotencyKey(newKey()))
	want(t, r, http.StatusCreated)
	topupsID := object(t, r)["id"].(string)

	e.create(t, "/payments/topups", topup(group1, "1.00")) // nobody is enabled yet
	for _, id := range []string{allID, topupsID} {
		r = e.c.Do(t, http.MethodPatch, "/webhooks/"+id, mustJSON(t, map[string]any{"enabled": true}), simtest.Token(e.tok))
		want(t, r, http.StatusOK)
		if object(t, r)["enabled"] != true {
			t.Fatalf("patched %s", r.Body)
		}
	}
	e.sim.Advance() // TOPUP.SETTLED, CASH_BALANCE.UPDATED
	gotAll := all.waitFor(t, 1)
	gotTopups := topups.waitFor(t, 1)
	var allTypes []string
	for _, d := range gotAll {
		for _, ev := range d.payload(t) {
			allTypes = append(allTypes, ev.Type)
			if ev.WebhookID != allID {
				t.Fatalf("event for %s carries webhook_id %s", allID, ev.WebhookID)
			}
		}
	}
	wantEvents(t, allTypes, "TOPUP.SETTLED", "CASH_BALANCE.UPDATED")
	evs := gotTopups[0].payload(t)
	if len(gotTopups) != 1 || len(evs) != 1 || evs[0].Type != "TOPUP.SETTLED" || evs[0].WebhookID != topupsID {
		t.Fatalf("TOPUP subscription got %s", gotTopups[0].body)
	}

	// Read, list, update, test, delete.
	want(t, e.get(t, "/webhooks/"+allID), http.StatusOK)
	r = e.get(t, "/webhooks?sort=title&order=DESC&limit=1", simtest.Token(e.c.MustToken(t, "webhooks:read")))
	want(t, r, http.StatusOK)
	var list struct {
		Meta map[string]any   `json:"meta"`
		Data []map[string]any `json:"data"`
	}
	if err := r.JSON(&list); err != nil || len(list.Data) != 1 || list.Data[0]["title"] != "topups" || list.Meta["total_count"] != float64(2) {
		t.Fatalf("list %s", r.Body)
	}
	for _, body := range []map[string]any{
		{"url": "ftp://example.com"}, {"type": []string{"NOPE"}}, {"config": map[string]any{"delay": "0s"}},
		{"config": map[string]any{"max_package_size": 99}}, {"title": ""}, {"secret": "x"},
	} {
		r = e.c.Do(t, http.MethodPatch, "/webhooks/"+allID, mustJSON(t, body), simtest.Token(e.tok))
		wantProblem(t, r, http.StatusBadRequest, "bad_request")
	}
	r = e.c.Do(t, http.MethodPost, "/webhooks", mustJSON(t, map[string]any{"title": "x", "url": all.srv.URL, "enabled": true}), simtest.Token(e.tok))
	wantProblem(t, r, http.StatusBadRequest, "bad_request", "enabled")
	r = e.c.Do(t, http.MethodPost, "/webhooks", mustJSON(t, map[string]any{"title": "x"}), simtest.Token(e.tok))
	wantProblem(t, r, http.StatusBadRequest, "bad_request", "url")

	n := len(all.deliveries())
	want(t, e.c.Do(t, http.MethodPost, "/webhooks/"+allID+"/test", nil, simtest.Token(e.tok)), http.StatusAccepted)
	test := all.waitFor(t, n+1)[n]
	if evs := test.payload(t); len(evs) != 0 {
		t.Fatalf("test delivery %s", test.body)
	}
	if _, err := verify(t, test, e.jwks(t)); err != nil {
		t.Fatalf("test delivery signature: %v", err)
	}

	// Inspection: the subscriptions as held, in creation order.
	subs := e.sim.Subscriptions()
	if len(subs) != 2 || subs[0].ID != allID || !subs[0].Enabled || subs[0].URL != all.srv.URL || !slices.Equal(subs[0].Types, []string{"ALL"}) ||
		subs[1].ID != topupsID || subs[1].MaxPackageSize != 100 || subs[1].Delay != "5s" || subs[1].CreatedAt.IsZero() {
		t.Fatalf("Subscriptions() = %+v", subs)
	}
	status, body := e.control(t, http.MethodGet, "webhooks", "")
	var held []map[string]any
	if err := json.Unmarshal(body, &held); status != http.StatusOK || err != nil || len(held) != 2 || held[1]["id"] != topupsID || held[1]["enabled"] != true {
		t.Fatalf("GET /_sim/webhooks: %d %s", status, body)
	}

	want(t, e.del(t, "/webhooks/"+topupsID), http.StatusNoContent)
	if subs := e.sim.Subscriptions(); len(subs) != 1 || subs[0].ID != allID {
		t.Fatalf("after delete, Subscriptions() = %+v", subs)
	}
	wantProblem(t, e.get(t, "/webhooks/"+topupsID), http.StatusNotFound, "not_found")
	wantProblem(t, e.del(t, "/webhooks/"+topupsID), http.StatusNotFound, "not_found")
	e.create(t, "/payments/topups", topup(group1, "1.00"))
	all.waitFor(t, n+2)
	time.Sleep(20 * time.Millisecond)
	if got := len(topups.deliveries()); got != 1 {
		t.Fatalf("deleted subscription got %d deliveries", got)
	}
	// The read scope may read but not write.
	read := e.c.MustToken(t, "webhooks:read")
	want(t, e.c.Do(t, http.MethodDelete, "/webhooks/"+allID, nil, simtest.Token(read)), http.StatusForbidden)
}

// max_package_size bounds the bytes of a delivery (at least one event).
func TestWebhookPackageSize(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, withConfig(func(c *upvestsim.Config) { c.EnableNewWebhooks = true }))
	r := e.c.Do(t, http.MethodPost, "/webhooks", mustJSON(t, map[string]any{"title": "small", "url": rc.srv.URL, "config": map[string]any{"max_package_size": 1200}}), simtest.Token(e.tok))
	want(t, r, http.StatusCreated)
	if object(t, r)["enabled"] != true {
		t.Fatalf("EnableNewWebhooks ignored: %s", r.Body)
	}
	e.sim.PauseWebhooks(true)
	for range 6 {
		e.create(t, "/payments/direct_debits", directDebit(group1, "1.00"))
	}
	e.sim.PauseWebhooks(false)
	eventually(t, "all events delivered", func() bool {
		n := 0
		for _, d := range rc.deliveries() {
			n += len(d.payload(t))
		}
		return n == 6
	})
	for _, d := range rc.deliveries() {
		if len(d.body) > 1200 && len(d.payload(t)) > 1 {
			t.Fatalf("delivery of %d bytes with %d events", len(d.body), len(d.payload(t)))
		}
	}
	if len(rc.deliveries()) < 3 {
		t.Fatalf("%d deliveries: max_package_size not applied", len(rc.deliveries()))
	}
}

// Close stops deliveries even while a receiver hangs.
func TestCloseStopsDelivery(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(func() { close(release); hang.Close() })
	e := webhookEnv(t, hang.URL)
	e.create(t, "/payments/topups", topup(group1, "1.00"))
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { e.sim.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a delivery hung")
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// A raw event (malformed, as Upvest should never send) is delivered as it
// was given, in order with the others, and retried and holding back later
// events like any other.
func TestWebhookEmitRaw(t *testing.T) {
	rc := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e := webhookEnv(t, rc.srv.URL+"/hooks", withConfig(func(c *upvestsim.Config) { c.WebhookBackoffUnit = time.Millisecond }))
	raw := []byte(`{"id":"3b3c7c38-6a36-4d0e-8a3b-6c8e5b2f1a11","created_at":"2026-01-02T10:00:00","type":"TOPUP.SETTLED","object":{},"webhook_id":"` + e.sim.WebhookID() + `"}`)
	if err := e.sim.EmitRaw(raw); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.EmitRaw([]byte(`{`)); err == nil {
		t.Fatal("EmitRaw took invalid JSON")
	}
	e.create(t, "/payments/topups", topup(group1, "25.00"))
	got := rc.waitFor(t, 2)
	for _, d := range got[:2] {
		if !bytes.Contains(d.body, raw) {
			t.Fatalf("delivery %s lacks the raw event as given", d.body)
		}
	}
	if !bytes.Equal(got[0].body, got[1].body) {
		t.Fatal("the retry differs from the first attempt")
	}
	if e.sim.WebhookID() == "" || len(e.sim.Events()) < 2 || e.sim.Events()[0].ID != "3b3c7c38-6a36-4d0e-8a3b-6c8e5b2f1a11" {
		t.Fatalf("events %+v", e.sim.Events())
	}
}

// SendDelivery signs with the webhook key: with upvest-client-id covered
// when asked, and as of a given time.
func TestWebhookSendDelivery(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t)
	keys := e.jwks(t)
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	client := "5f3e7c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"
	code, err := e.sim.SendDelivery(t.Context(), rc.srv.URL+"/hooks", []byte(`{"payload":[]}`), upvestsim.ForClient(client), upvestsim.SignedAt(at))
	if err != nil || code != http.StatusOK {
		t.Fatalf("SendDelivery: %d %v", code, err)
	}
	d := rc.waitFor(t, 1)[0]
	req := httptest.NewRequest(d.method, d.path, bytes.NewReader(d.body))
	req.Header = d.header.Clone()
	v, err := httpsig.Verify(t.Context(), req, d.body, keys, httpsig.VerifyOptions{
		Now: func() time.Time { return at }, Required: []string{"upvest-client-id"},
	})
	if err != nil || !v.Created.Equal(at) || d.header.Get("Upvest-Client-Id") != client {
		t.Fatalf("verified %+v, %v; header %v", v, err, d.header)
	}
	if n := len(e.sim.Deliveries()); n != 0 {
		t.Errorf("SendDelivery recorded %d deliveries", n)
	}
}
