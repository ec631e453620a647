package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/problem"
)

// The REST face of the Watch RPCs (GET …:watch).
//
// A stream is served as newline-delimited JSON (application/x-ndjson), one
// {"result": <message>} per line as grpc-gateway writes it; or, when the
// request's Accept lists text/event-stream, as Server-Sent Events, one event
// per message:
//
//	id: <resume_token>
//	event: event | heartbeat | snapshot | update
//	data: <the message as JSON>
//
// Every message is flushed as it is sent, and the answer says not to buffer
// or cache it (Cache-Control: no-cache, X-Accel-Buffering: no).
//
// An error before the first message (invalid filter, expired token …) is an
// ordinary problem+json answer with its HTTP status, as for every other REST
// call. An error after it ends the stream with a last record holding the
// problem: {"error": <problem>} in NDJSON, and in SSE
//
//	event: end
//	data: <the problem as JSON>
//
// The name is not "error" on purpose: a browser's EventSource hands an
// "error" event to its onerror handler, where it cannot be told from a lost
// connection, and a page that closes the EventSource there loses the
// automatic resume. An "end" event reaches only listeners for "end"; the
// connection then closes, and the EventSource reconnects by itself with
// Last-Event-ID, which resumes exactly after the last event it got. Whether
// to resume is in the problem: UNAVAILABLE and RESOURCE_EXHAUSTED are over
// on reconnecting; a reconnect that cannot succeed (an expired token) is
// answered with a non-200 problem, which makes an EventSource stop.
//
// For SSE the Last-Event-ID header is the resume token, and it wins over a
// resume_token query parameter: an EventSource reconnects to the URL it was
// opened with (token and all) and sends the id of the last event it got in
// Last-Event-ID, which is where the stream must continue.
//
// These handlers are the only REST path of the streams: grpc-gateway
// generates no handler for them (their rules are in streams.yaml, not
// gateway.yaml), since its stream forwarding cannot answer an early error
// with problem+json (it writes {"error": …} in whatever the stream's format
// is) and has no SSE. They go through the in-memory gRPC connection, so a
// REST stream passes the same interceptors as a gRPC one (BENCHMARKS.md
// has what that costs an event), and parse the request with grpc-gateway's
// own query and path functions.

// streamWriteTimeout bounds each write to a REST stream's client. A client
// that stops reading would otherwise hold its stream (and the gRPC call
// behind it) for as long as its connection lives; cut off, it resumes with
// its last token like any other.
const streamWriteTimeout = 30 * time.Second

// Media types of the REST streams.
const (
	NDJSONContentType      = "application/x-ndjson"
	EventStreamContentType = "text/event-stream"
)

// watchRoute is the REST face of one Watch RPC. Its functions read and set
// the fields every Watch message and request has through the generated
// accessors: no reflection per message.
type watchRoute struct {
	path   string // the HTTP rule's path template (streams.yaml)
	method string // full gRPC method name
	req    func() proto.Message
	resp   func() proto.Message
	// resumeFrom sets the request's resume_token.
	resumeFrom func(req proto.Message, token string)
}

// watchRoutes are the REST streams; the OpenAPI description lists the same
// (restHandler fails on one it does not).
var watchRoutes = []watchRoute{
	newWatchRoute[gatewayv1.WatchVirtualCashEventsRequest, gatewayv1.WatchVirtualCashEventsResponse](
		"/v1/virtual_cash_balances:watch", gatewayv1.VirtualCashService_WatchVirtualCashEvents_FullMethodName,
		func(r *gatewayv1.WatchVirtualCashEventsRequest, t string) { r.ResumeToken = t }),
	newWatchRoute[gatewayv1.WatchTopupEventsRequest, gatewayv1.WatchTopupEventsResponse](
		"/v1/payments/topups:watch", gatewayv1.TopupService_WatchTopupEvents_FullMethodName,
		func(r *gatewayv1.WatchTopupEventsRequest, t string) { r.ResumeToken = t }),
	newWatchRoute[gatewayv1.WatchPaymentEventsRequest, gatewayv1.WatchPaymentEventsResponse](
		"/v1/payments:watch", gatewayv1.PaymentsService_WatchPaymentEvents_FullMethodName,
		func(r *gatewayv1.WatchPaymentEventsRequest, t string) { r.ResumeToken = t }),
	newWatchRoute[gatewayv1.WatchCashBalanceRequest, gatewayv1.WatchCashBalanceResponse](
		"/v1/account_groups/{account_group_id}/payments/cash_balance:watch", gatewayv1.CashBalanceService_WatchCashBalance_FullMethodName,
		func(r *gatewayv1.WatchCashBalanceRequest, t string) { r.ResumeToken = t }),
}

// newWatchRoute is the route of a Watch RPC whose request is *Req and whose
// messages are *Resp.
func newWatchRoute[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](path, method string, resumeFrom func(PReq, string)) watchRoute {
	return watchRoute{
		path:       path,
		method:     method,
		req:        func() proto.Message { return PReq(new(Req)) },
		resp:       func() proto.Message { return PResp(new(Resp)) },
		resumeFrom: func(req proto.Message, token string) { resumeFrom(req.(PReq), token) },
	}
}

// watchMessage is what every Watch message has.
type watchMessage interface {
	GetResumeToken() string
	GetHeartbeat() *gatewayv1.Heartbeat
}

// streamFields are a Watch message's resume token and the name of what it
// carries: its SSE event name.
func streamFields(m proto.Message) (token, kind string) {
	wm, ok := m.(watchMessage)
	if !ok {
		return "", "event"
	}
	switch cb, _ := m.(*gatewayv1.WatchCashBalanceResponse); {
	case wm.GetHeartbeat() != nil:
		kind = "heartbeat"
	case cb != nil && cb.GetSnapshot() != nil:
		kind = "snapshot"
	case cb != nil && cb.GetUpdate() != nil:
		kind = "update"
	default:
		kind = "event"
	}
	return wm.GetResumeToken(), kind
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// streamFormat frames the messages of a REST stream.
type streamFormat interface {
	contentType() string
	message(w io.Writer, token, kind string, data []byte) error
	problem(w io.Writer, data []byte) error
}

type ndjson struct{}

func (ndjson) contentType() string { return NDJSONContentType }

func (ndjson) message(w io.Writer, _, _ string, data []byte) error {
	return writeAll(w, []byte(`{"result":`), data, []byte("}\n"))
}

func (ndjson) problem(w io.Writer, data []byte) error {
	return writeAll(w, []byte(`{"error":`), data, []byte("}\n"))
}

type eventStream struct{}

func (eventStream) contentType() string { return EventStreamContentType }

func (eventStream) message(w io.Writer, token, kind string, data []byte) error {
	var b bytes.Buffer
	if token != "" && !strings.ContainsAny(token, "\r\n") {
		b.WriteString("id: " + token + "\n")
	}
	b.WriteString("event: " + kind + "\n")
	sseData(&b, data)
	_, err := w.Write(b.Bytes())
	return err
}

// SSEEndEvent is the event name that ends a Server-Sent Events stream with
// a problem (see above).
const SSEEndEvent = "end"

func (eventStream) problem(w io.Writer, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: " + SSEEndEvent + "\n")
	sseData(&b, data)
	_, err := w.Write(b.Bytes())
	return err
}

// sseData writes data as data lines and ends the event. JSON has no raw
// line breaks, but a data line must never carry one.
func sseData(b *bytes.Buffer, data []byte) {
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
}

func writeAll(w io.Writer, parts ...[]byte) error {
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// acceptsEventStream reports whether an Accept header lists
// text/event-stream (with a non-zero q), as an EventSource's does.
func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != EventStreamContentType {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
				continue
			}
			return true
		}
	}
	return false
}

// watchHandler serves one Watch RPC's REST route.
func (s *Server) watchHandler(rt watchRoute) http.Handler {
	var (
		params []string
		seqs   [][]string // path parameters are not taken from the query
	)
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		params = append(params, m[1])
		seqs = append(seqs, []string{m[1]})
	}
	filter := utilities.NewDoubleArray(seqs)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f streamFormat = ndjson{}
		if acceptsEventStream(r.Header) {
			f = eventStream{}
		}
		req, err := rt.request(r, params, filter, f)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, status.Convert(err))
			return
		}
		s.forwardStream(w, r, rt, req, f)
	})
}

// request builds the RPC's request from the path, the query and, for SSE,
// Last-Event-ID, with grpc-gateway's own parsers.
func (rt watchRoute) request(r *http.Request, params []string, filter *utilities.DoubleArray, f streamFormat) (proto.Message, error) {
	req := rt.req()
	for _, p := range params {
		if err := runtime.PopulateFieldFromPath(req, p, r.PathValue(p)); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "path parameter %s: %v", p, err)
		}
	}
	if err := runtime.PopulateQueryParameters(req, r.URL.Query(), filter); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if _, ok := f.(eventStream); ok {
			rt.resumeFrom(req, id)
		}
	}
	return req, nil
}

// forwardStream runs the RPC over the in-memory connection and writes its
// messages as f frames them, flushing each.
func (s *Server) forwardStream(w http.ResponseWriter, r *http.Request, rt watchRoute, req proto.Message, f streamFormat) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ctx, err := runtime.AnnotateContext(ctx, s.rest, r, rt.method, runtime.WithHTTPPathPattern(rt.path))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, status.Convert(err))
		return
	}
	_, marshaler := runtime.MarshalerForRequest(s.rest, r)

	cs, err := s.restConn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, rt.method)
	if err == nil {
		if err = cs.SendMsg(req); err == nil {
			err = cs.CloseSend()
		}
	}
	rc := http.NewResponseController(w)
	started := false
	for err == nil {
		resp := rt.resp()
		if err = cs.RecvMsg(resp); err != nil {
			break
		}
		var data []byte
		if data, err = marshaler.Marshal(resp); err != nil {
			err = status.Error(codes.Internal, "the message could not be encoded")
			break
		}
		if !started {
			started = true
			s.startStream(w, cs, f)
		}
		token, kind := streamFields(resp)
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if f.message(w, token, kind, data) != nil || rc.Flush() != nil {
			return // the client is gone or stuck; cancel ends the RPC
		}
	}
	if errors.Is(err, io.EOF) {
		if !started {
			s.startStream(w, cs, f)
		}
		return
	}
	st := status.Convert(err)
	httpStatus := runtime.HTTPStatusFromCode(st.Code())
	if !started {
		if cs != nil {
			copyHeader(w, cs)
		}
		writeProblem(w, httpStatus, st)
		return
	}
	if r.Context().Err() != nil {
		return // nobody to tell
	}
	data := problem.FromStatus(httpStatus, st).Marshal()
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if f.problem(w, data) == nil {
		_ = rc.Flush()
	}
}

// startStream sends the answer's header: the response header metadata the
// RPC set, and what keeps proxies from buffering or caching the stream.
func (s *Server) startStream(w http.ResponseWriter, cs grpc.ClientStream, f streamFormat) {
	copyHeader(w, cs)
	h := w.Header()
	h.Set("Content-Type", f.contentType())
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
}

// copyHeader exposes the ids the REST face exposes for unary calls (e.g. the
// upvest-request-id of WatchCashBalance's snapshot read).
func copyHeader(w http.ResponseWriter, cs grpc.ClientStream) {
	md, err := cs.Header()
	if err != nil {
		return
	}
	for k, vs := range md {
		if name, ok := outgoingHeader(k); ok && len(vs) > 0 {
			w.Header().Set(name, vs[0])
		}
	}
}
