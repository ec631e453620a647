package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// The REST face of the Watch RPCs, read by a real net/http client.

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

// restStream is an open REST stream.
type restStream struct {
	res    *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openStream GETs path with the given headers, as a client that keeps the
// connection for as long as the stream runs.
func openStream(t *testing.T, g *servertest.Gateway, path string, header http.Header) *restStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.BaseURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &restStream{res: res, r: bufio.NewReader(res.Body), cancel: cancel}
}

func sseHeader(lastEventID string) http.Header {
	h := http.Header{"Accept": {"text/event-stream"}}
	if lastEventID != "" {
		h.Set("Last-Event-ID", lastEventID)
	}
	return h
}

// next reads one event, after the SSE rules: fields up to a blank line,
// comments ignored, data lines joined.
func (s *restStream) next(t *testing.T) sseEvent {
	t.Helper()
	var e sseEvent
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v (so far %q)", err, line)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if e.event == "" && data == nil && e.id == "" {
				continue
			}
			e.data = strings.Join(data, "\n")
			return e
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			e.id = value
		case "event":
			e.event = value
		case "data":
			data = append(data, value)
		}
	}
}

// nextEvent skips heartbeats.
func (s *restStream) nextEvent(t *testing.T) sseEvent {
	t.Helper()
	for {
		if e := s.next(t); e.event != "heartbeat" {
			return e
		}
	}
}

// line reads one NDJSON record.
func (s *restStream) line(t *testing.T) map[string]map[string]any {
	t.Helper()
	b, err := s.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading the NDJSON stream: %v", err)
	}
	var rec map[string]map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("NDJSON record %q: %v", b, err)
	}
	return rec
}

// eventID is the upstream event id in an SSE event's data.
func eventID(t *testing.T, e sseEvent) string {
	t.Helper()
	var d struct {
		ResumeToken string `json:"resume_token"`
		Event       struct {
			ID    string         `json:"id"`
			Type  string         `json:"type"`
			Topup map[string]any `json:"topup"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(e.data), &d); err != nil {
		t.Fatalf("data %q: %v", e.data, err)
	}
	if d.ResumeToken != e.id {
		t.Errorf("data resume_token %q, id %q", d.ResumeToken, e.id)
	}
	if e.event == "event" && (d.Event.Type != "TOPUP_EVENT_TYPE_CONFIRMED" || d.Event.Topup["id"] == nil) {
		t.Errorf("event data %s", e.data)
	}
	return d.Event.ID
}

func checkStreamHeader(t *testing.T, s *restStream, contentType string) {
	t.Helper()
	h := s.res.Header
	if s.res.StatusCode != http.StatusOK || h.Get("Content-Type") != contentType || h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("answer %d %v, want 200 %s, not to be buffered or cached", s.res.StatusCode, h, contentType)
	}
}

// TestServerSentEvents: with Accept: text/event-stream a stream is served as
// SSE, one event per message with the resume token as its id; reconnecting
// with Last-Event-ID continues exactly after that event.
func TestServerSentEvents(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		g := start(t, be)
		ag := uuid.NewString()
		path := "/v1/payments/topups:watch?account_group_id=" + ag

		s := openStream(t, g, path, http.Header{"Accept": {"application/json;q=0.5, text/event-stream"}})
		checkStreamHeader(t, s, server.EventStreamContentType)
		first := s.next(t)
		if first.event != "heartbeat" || first.id == "" {
			t.Fatalf("first event %+v, want a heartbeat with an id", first)
		}
		eventID(t, first)
		evs := createTopups(t, g, ag, 3)
		got := []sseEvent{s.nextEvent(t), s.nextEvent(t)}
		equalIDs(t, "SSE", []string{eventID(t, got[0]), eventID(t, got[1])}, simIDs(evs[:2]))
		s.cancel() // the client drops the connection

		// An EventSource reconnects to the same URL (here with an older
		// resume_token in it) and sends the last id it got: that wins.
		r := openStream(t, g, path+"&resume_token="+first.id, sseHeader(got[1].id))
		checkStreamHeader(t, r, server.EventStreamContentType)
		if e := r.nextEvent(t); eventID(t, e) != evs[2].ID {
			t.Fatalf("after reconnecting: %+v, want event %s", e, evs[2].ID)
		}
		r.cancel()

		// Without text/event-stream in Accept: newline-delimited JSON.
		n := openStream(t, g, path+"&resume_token="+first.id, http.Header{"Accept": {"application/json"}})
		checkStreamHeader(t, n, server.NDJSONContentType)
		var ndIDs []string
		for len(ndIDs) < 3 {
			rec := n.line(t)
			res, ok := rec["result"]
			if !ok || res["resume_token"] == "" {
				t.Fatalf("NDJSON record %v, want a result with a resume_token", rec)
			}
			if ev, ok := res["event"].(map[string]any); ok {
				ndIDs = append(ndIDs, ev["id"].(string))
			}
		}
		equalIDs(t, "NDJSON", ndIDs, simIDs(evs))
		n.cancel()

		// Cash balance: the path's account group, a snapshot first.
		cb := openStream(t, g, "/v1/account_groups/"+ag+"/payments/cash_balance:watch", sseHeader(""))
		checkStreamHeader(t, cb, server.EventStreamContentType)
		snap := cb.next(t)
		var d struct {
			Snapshot struct {
				CashBalance struct {
					AccountGroupID string `json:"account_group_id"`
					Balance        string `json:"balance"`
				} `json:"cash_balance"`
			} `json:"snapshot"`
		}
		if err := json.Unmarshal([]byte(snap.data), &d); err != nil || snap.event != "snapshot" || snap.id == "" ||
			d.Snapshot.CashBalance.AccountGroupID != ag || d.Snapshot.CashBalance.Balance != "30" {
			t.Fatalf("first cash balance event %+v (%v), want a snapshot of %s with balance 30", snap, err, ag)
		}
		if _, err := g.Topups().CreateTopup(ctxT(t), topupRequest(ag)); err != nil {
			t.Fatal(err)
		}
		// Updates created within the snapshot's clock-skew allowance may
		// repeat its balance of 30 first (service.WithSnapshotSkew).
		for {
			u := cb.nextEvent(t)
			if u.event == "update" && strings.Contains(u.data, `"balance":"40"`) {
				break
			}
			if u.event != "update" || !strings.Contains(u.data, `"balance":"30"`) {
				t.Fatalf("cash balance event %+v, want an update to 40 (after repeats of 30)", u)
			}
		}
	})
}

// TestStreamErrors: an error before the first message is a problem+json
// answer like any REST error; one after it is the stream's last record.
func TestStreamErrors(t *testing.T) {
	g := start(t, eventstest.Backend{Name: "embedded"})
	for _, h := range []http.Header{sseHeader("not-a-token"), {"Accept": {"application/json"}}} {
		path := "/v1/payments/topups:watch"
		if h.Get("Last-Event-ID") == "" {
			path += "?resume_token=not-a-token"
		}
		res, body := g.Do(t, http.MethodGet, path, "", h)
		var p problem.Details
		if err := json.Unmarshal(body, &p); err != nil || res.StatusCode != http.StatusBadRequest ||
			res.Header.Get("Content-Type") != problem.ContentType || p.Code != "INVALID_ARGUMENT" {
			t.Errorf("bad token (Accept %s): %d %s %s", h.Get("Accept"), res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	res, body := g.Do(t, http.MethodGet, "/v1/payments/topups:watch?event_types=NOT_A_TYPE", "", sseHeader(""))
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Content-Type") != problem.ContentType {
		t.Errorf("bad query: %d %s", res.StatusCode, body)
	}
	res, body = g.Do(t, http.MethodGet, "/v1/payments/topups:watch?event_types=TOPUP_EVENT_TYPE_UNSPECIFIED", "", nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "event_types[0]") {
		t.Errorf("UNSPECIFIED event type: %d %s", res.StatusCode, body)
	}

	// Shutdown ends the open streams with UNAVAILABLE, in each one's format,
	// instead of waiting out the drain.
	sse := openStream(t, g, "/v1/payments:watch", sseHeader(""))
	sse.next(t)
	nd := openStream(t, g, "/v1/payments:watch", nil)
	nd.line(t)
	stopped := time.Now()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stopped); d > 3*time.Second {
		t.Errorf("shutdown took %v with open streams", d)
	}
	e := sse.nextEvent(t)
	var p problem.Details
	if err := json.Unmarshal([]byte(e.data), &p); err != nil || e.event != server.SSEEndEvent || p.Code != "UNAVAILABLE" || p.Status != http.StatusServiceUnavailable {
		t.Errorf("SSE after shutdown: %+v, want an end event with an UNAVAILABLE problem", e)
	}
	if _, err := sse.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("SSE after the end event: %v, want the end", err)
	}
	for {
		rec := nd.line(t)
		if perr, ok := rec["error"]; ok {
			if perr["code"] != "UNAVAILABLE" {
				t.Errorf("NDJSON error record %v, want UNAVAILABLE", perr)
			}
			break
		}
	}
}
