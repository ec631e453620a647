package server

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// ProblemContentType is the media type of every REST error (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is the body of a REST error: RFC 9457 problem details, extended
// with the gRPC status behind it, so a REST caller gets everything a gRPC
// caller gets.
type Problem struct {
	Type   string `json:"type"`             // "about:blank": the HTTP status says what kind of problem it is
	Title  string `json:"title"`            // the HTTP status text
	Status int    `json:"status"`           // the HTTP status
	Detail string `json:"detail,omitempty"` // the gRPC status message
	// Code is the gRPC status code name, e.g. "INVALID_ARGUMENT".
	Code string `json:"code"`
	// FieldViolations repeats the google.rpc.BadRequest detail, if any, for
	// callers that do not want to walk Details.
	FieldViolations []FieldViolation `json:"field_violations,omitempty"`
	// Details are the gRPC status details (ErrorInfo, RequestInfo, RetryInfo,
	// BadRequest, PreconditionFailure ...) in protobuf JSON, with "@type".
	Details []json.RawMessage `json:"details,omitempty"`
}

// FieldViolation is one invalid request field (a proto field name).
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// problemErrorHandler is the REST face's runtime.ErrorHandlerFunc: the gRPC
// status as problem+json, with the HTTP status grpc-gateway would use.
func problemErrorHandler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	httpStatus := 0
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		httpStatus, err = hse.HTTPStatus, hse.Err
	}
	st := status.Convert(err)
	if bodyTooLarge(ctx) {
		// The decoder reports an oversized body as a plain InvalidArgument.
		httpStatus = http.StatusRequestEntityTooLarge
		st = status.New(codes.InvalidArgument, "the request body is too large")
	}
	if httpStatus == 0 {
		httpStatus = runtime.HTTPStatusFromCode(st.Code())
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		for k, vs := range md.HeaderMD {
			if name, ok := outgoingHeader(k); ok && len(vs) > 0 {
				w.Header().Set(name, vs[0])
			}
		}
	}
	writeProblem(w, httpStatus, st)
}

// problemRoutingErrorHandler answers requests no REST route matches.
func problemRoutingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var st *status.Status
	switch httpStatus {
	case http.StatusNotFound:
		st = status.New(codes.NotFound, "no REST route matches this path")
	case http.StatusMethodNotAllowed:
		st = status.New(codes.Unimplemented, "this path does not accept method "+r.Method)
	case http.StatusBadRequest:
		st = status.New(codes.InvalidArgument, "malformed request path")
	default:
		st = status.New(codes.Internal, "routing error")
	}
	writeProblem(w, httpStatus, st)
}

// writeProblem writes st as a problem+json answer with httpStatus.
func writeProblem(w http.ResponseWriter, httpStatus int, st *status.Status) {
	p := newProblem(httpStatus, st)
	for _, d := range st.Details() {
		if d, ok := d.(*errdetails.RetryInfo); ok {
			if secs := math.Ceil(d.GetRetryDelay().AsDuration().Seconds()); secs > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(secs)))
			}
		}
	}
	body, err := json.Marshal(p)
	if err != nil {
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"code":"INTERNAL"}`)
		httpStatus = http.StatusInternalServerError
	}
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Set("Content-Type", ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// newProblem is st as problem details, for an answer with httpStatus.
func newProblem(httpStatus int, st *status.Status) Problem {
	p := Problem{
		Type:   "about:blank",
		Title:  statusText(httpStatus),
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
		if d, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range d.GetFieldViolations() {
				p.FieldViolations = append(p.FieldViolations, FieldViolation{Field: fv.GetField(), Description: fv.GetDescription()})
			}
		}
	}
	return p
}

func statusText(code int) string {
	if code == 499 { // grpc-gateway's status for CANCELED; nginx's name for it
		return "Client Closed Request"
	}
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Error"
}
