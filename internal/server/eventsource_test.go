package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/upvest-gateway/gateway/internal/events/eventstest"
	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// eventSource is a client that behaves as a browser's EventSource does
// (WHATWG HTML, "Server-sent events"): it parses the stream by the spec's
// rules, keeps the last event ID across events and connections, and when a
// connection ends it reconnects by itself, sending Last-Event-ID. It fails
// (stops for good) on an answer that is not 200 text/event-stream. Events
// named "error" are what a browser would hand to onerror.
type eventSource struct {
	url         string
	lastEventID string
	retry       time.Duration
	connects    []string // the Last-Event-ID sent on each connection
}

// sourceEvent is one dispatched event.
type sourceEvent struct {
	typ, data, lastEventID string
}

// run connects and dispatches events to on until on returns false, ctx
// ends or the connection fails; it returns why it stopped.
func (es *eventSource) run(ctx context.Context, t *testing.T, on func(sourceEvent) bool) error {
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, es.url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Cache-Control", "no-cache")
		if es.lastEventID != "" {
			req.Header.Set("Last-Event-ID", es.lastEventID)
		}
		es.connects = append(es.connects, es.lastEventID)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		if res.StatusCode != http.StatusOK || mt != "text/event-stream" {
			res.Body.Close()
			return &failedError{status: res.StatusCode}
		}
		stop := es.read(res.Body, on)
		res.Body.Close()
		if stop {
			return nil
		}
		// The connection ended: reestablish it after the reconnection time.
		select {
		case <-time.After(es.retry):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type failedError struct{ status int }

func (e *failedError) Error() string { return "EventSource failed: status " + strconv.Itoa(e.status) }

// read parses one connection's stream; it reports whether on asked to stop.
func (es *eventSource) read(body io.Reader, on func(sourceEvent) bool) bool {
	r := bufio.NewReader(body)
	var data strings.Builder
	typ := ""
	first := true
	for {
		line, err := readLine(r)
		if err != nil {
			return false // end of stream; an incomplete event is discarded
		}
		if first {
			line = strings.TrimPrefix(line, "\uFEFF")
			first = false
		}
		if line == "" {
			// Dispatch.
			if data.Len() == 0 {
				typ = ""
				continue
			}
			d := strings.TrimSuffix(data.String(), "\n")
			ev := sourceEvent{typ: typ, data: d, lastEventID: es.lastEventID}
			if ev.typ == "" {
				ev.typ = "message"
			}
			data.Reset()
			typ = ""
			if !on(ev) {
				return true
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			typ = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.ContainsRune(value, 0) {
				es.lastEventID = value
			}
		case "retry":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 && strings.Trim(value, "0123456789") == "" {
				es.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}

// readLine reads a line ended by CRLF, LF or CR.
func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		switch c {
		case '\n':
			return b.String(), nil
		case '\r':
			if next, err := r.Peek(1); err == nil && next[0] == '\n' {
				r.ReadByte()
			}
			return b.String(), nil
		}
		b.WriteByte(c)
	}
}

// endWatchesAfter ends every Watch stream with UNAVAILABLE once it has sent
// n messages, as a gateway replica going away, a log outage or a slow
// subscriber would.
func endWatchesAfter(n int) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &endingStream{ServerStream: ss, left: int32(n)})
	}
}

type endingStream struct {
	grpc.ServerStream
	left int32
}

func (s *endingStream) SendMsg(m any) error {
	if atomic.AddInt32(&s.left, -1) < 0 {
		return status.Error(codes.Unavailable, "the stream ends here; resume with the last resume_token")
	}
	return s.ServerStream.SendMsg(m)
}

// TestEventSourceResumes: a browser-style EventSource reading a REST stream
// that keeps ending sees each end as an "end" event with the problem (not an
// "error" event, which a browser hands to onerror), reconnects by itself
// with Last-Event-ID, and gets every event exactly once, in order.
func TestEventSourceResumes(t *testing.T) {
	eventstest.ForEachBackend(t, func(t *testing.T, be eventstest.Backend) {
		g := start(t, be, servertest.WithServerOptions(server.WithStreamInterceptors(endWatchesAfter(3))))
		ag := uuid.NewString()
		es := &eventSource{url: g.BaseURL + "/v1/payments/topups:watch?account_group_id=" + ag, retry: 10 * time.Millisecond}

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		want := 8
		var got []string
		var ends []problem.Details
		ready := make(chan struct{})
		var subscribed sync.Once
		done := make(chan error, 1)
		go func() {
			done <- es.run(ctx, t, func(e sourceEvent) bool {
				switch e.typ {
				case "heartbeat":
					subscribed.Do(func() { close(ready) }) // the events can come
				case "event":
					got = append(got, eventID(t, sseEvent{id: e.lastEventID, event: e.typ, data: e.data}))
				case server.SSEEndEvent:
					var p problem.Details
					if err := json.Unmarshal([]byte(e.data), &p); err != nil {
						t.Errorf("end event data %q: %v", e.data, err)
					}
					ends = append(ends, p)
				case "error":
					t.Errorf("an error event, which EventSource gives to onerror: %s", e.data)
				}
				return len(got) < want
			})
		}()
		var created []string
		select {
		case <-ready:
			created = simIDs(createTopups(t, g, ag, want))
		case err := <-done:
			t.Fatalf("EventSource ended before its first heartbeat: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("EventSource: %v", err)
		}
		equalIDs(t, "events", got, created)
		if len(ends) < 2 || len(es.connects) != len(ends)+1 {
			t.Fatalf("%d end events over %d connections, want the stream to have ended and resumed several times", len(ends), len(es.connects))
		}
		for i, p := range ends {
			if p.Code != "UNAVAILABLE" || p.Status != http.StatusServiceUnavailable || p.Type == "" {
				t.Errorf("end %d: %+v, want an UNAVAILABLE problem", i, p)
			}
		}
		for i, id := range es.connects[1:] {
			if id == "" {
				t.Errorf("reconnection %d sent no Last-Event-ID", i+1)
			}
		}

		// A Last-Event-ID that cannot be resumed is answered with a problem,
		// not 200: the EventSource stops instead of reconnecting forever.
		bad := &eventSource{url: es.url, lastEventID: "not-a-token"}
		err := bad.run(ctx, t, func(sourceEvent) bool { return true })
		if fe, ok := err.(*failedError); !ok || fe.status != http.StatusBadRequest {
			t.Fatalf("EventSource with a bad Last-Event-ID: %v, want it to fail with 400", err)
		}
	})
}
