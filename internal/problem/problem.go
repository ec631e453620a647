// Package problem writes every HTTP error answer of the gateway, and of its
// Upvest simulator, as application/problem+json (RFC 9457): one shape, one
// writer.
package problem

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// ContentType is the media type of every problem answer.
const ContentType = "application/problem+json"

// TypePrefix starts the type of every problem the gateway itself makes
// (e.g. urn:upvest-gateway:problem:unauthenticated); a problem that Upvest
// made keeps Upvest's own type URL.
const TypePrefix = "urn:upvest-gateway:problem:"

// Details is one problem: RFC 9457's members and the extensions the gateway
// adds so that a REST caller learns everything a gRPC caller does.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title,omitempty"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Code is the gRPC status code name, e.g. "INVALID_ARGUMENT".
	Code string `json:"code,omitempty"`
	// RequestID is Upvest's request id (the simulator's answers carry it,
	// as Upvest's do).
	RequestID string `json:"request_id,omitempty"`
	// FieldViolations repeats the google.rpc.BadRequest detail, for
	// callers that do not want to walk Details.
	FieldViolations []FieldViolation `json:"field_violations,omitempty"`
	// Details are the gRPC status details (ErrorInfo, RequestInfo,
	// RetryInfo, BadRequest, ...) in protobuf JSON, with "@type".
	Details []json.RawMessage `json:"details,omitempty"`

	retryAfter int // seconds, for the Retry-After header; 0: none
}

// FieldViolation is one invalid request field.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// New is a problem the gateway makes: reason is a word such as
// "unauthenticated" (its type is TypePrefix+reason) and code the gRPC code
// name the same failure has on gRPC.
func New(httpStatus int, code rpccode.Code, reason, detail string) *Details {
	return &Details{
		Type:   TypePrefix + strings.ToLower(reason),
		Title:  Title(httpStatus),
		Status: httpStatus,
		Detail: detail,
		Code:   code.String(),
	}
}

// FromStatus is st as a problem answered with httpStatus. Its type is
// Upvest's problem type when ErrorInfo carries one (an upstream error),
// else TypePrefix and the ErrorInfo reason, else about:blank.
func FromStatus(httpStatus int, st *status.Status) *Details {
	p := &Details{
		Type:   "about:blank",
		Title:  Title(httpStatus),
		Status: httpStatus,
		Detail: st.Message(),
		Code:   rpccode.Code(st.Code()).String(),
	}
	for _, a := range st.Proto().GetDetails() {
		if b, err := protojson.Marshal(a); err == nil {
			p.Details = append(p.Details, b)
		}
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if t := d.GetMetadata()["problem_type"]; t != "" {
				p.Type = t
			} else if d.GetReason() != "" {
				p.Type = TypePrefix + strings.ToLower(d.GetReason())
			}
		case *errdetails.BadRequest:
			for _, fv := range d.GetFieldViolations() {
				p.FieldViolations = append(p.FieldViolations, FieldViolation{Field: fv.GetField(), Description: fv.GetDescription()})
			}
		case *errdetails.RetryInfo:
			if secs := math.Ceil(d.GetRetryDelay().AsDuration().Seconds()); secs > 0 {
				p.retryAfter = int(secs)
			}
		}
	}
	return p
}

// WithRetryAfter makes Write send Retry-After: d in whole seconds, at least
// one, for a problem that is over once the caller waits (429, 503).
func (p *Details) WithRetryAfter(d time.Duration) *Details {
	p.retryAfter = max(1, int(math.Ceil(d.Seconds())))
	return p
}

// Marshal is the problem's JSON body.
func (p *Details) Marshal() []byte {
	b, err := json.Marshal(p)
	if err != nil { // only a detail that is not JSON could do this
		return []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"code":"INTERNAL"}`)
	}
	return b
}

// Write answers the request with p: its status, the problem media type, a
// Retry-After when the problem says when to retry, and headers that keep
// the answer from being sniffed or cached.
func Write(w http.ResponseWriter, p *Details) {
	body := p.Marshal()
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// Title is the title of a problem with httpStatus: its status text.
func Title(httpStatus int) string {
	if httpStatus == 499 { // grpc-gateway's status for CANCELED; nginx's name for it
		return "Client Closed Request"
	}
	if t := http.StatusText(httpStatus); t != "" {
		return t
	}
	return "Error"
}
