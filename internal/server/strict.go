package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/upvest-gateway/gateway/internal/service"
)

// ErrorInfo reasons of the REST face's own refusals (domain
// service.GatewayErrorDomain).
const (
	ReasonMalformedBody         = "MALFORMED_BODY"          // not one JSON value, or data after it
	ReasonUnknownQueryParameter = "UNKNOWN_QUERY_PARAMETER" // a query parameter the call does not take
	ReasonMalformedQuery        = "MALFORMED_QUERY"
	ReasonBodyTooLarge          = "BODY_TOO_LARGE"
	ReasonNoRoute               = "NO_ROUTE"
	ReasonHTTPMethodNotAllowed  = "HTTP_METHOD_NOT_ALLOWED"
)

// strictJSON is the REST face's JSON: protojson with Upvest's field names
// out, and in, one JSON value and nothing after it (a second object or
// stray bytes must not be ignored in a money request), with errors that
// name the field as the REST face spells it (snake_case).
type strictJSON struct {
	runtime.JSONPb
}

// NewDecoder reads the whole body (capped by limitBody) before decoding,
// so that data after the value is seen.
func (m *strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		body, err := io.ReadAll(r)
		if err != nil {
			return err // a body over the cap: problemErrorHandler tells
		}
		err = m.decode(body, v)
		if st, ok := status.FromError(err); ok && err != nil {
			// The generated handlers keep only the message of a decoding
			// error; the request's body keeps the whole status for
			// problemErrorHandler.
			if lb, ok := r.(*limitedBody); ok {
				lb.decodeErr.Store(st)
			}
		}
		return err
	})
}

func (m *strictJSON) decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return io.EOF // no body: an empty request, as grpc-gateway's decoder has it
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var value json.RawMessage
	if err := dec.Decode(&value); err != nil {
		return malformedBody(jsonErrorText(err))
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return malformedBody(fmt.Sprintf("unexpected data after the JSON value at offset %d: send exactly one JSON object", dec.InputOffset()))
	}
	if msg, ok := v.(proto.Message); ok {
		if err := checkFields(value, msg.ProtoReflect().Descriptor()); err != nil {
			return err
		}
	}
	if err := m.Unmarshal(value, v); err != nil {
		// protojson's messages are unstable on purpose (they vary their
		// spaces); checkFields caught what a caller gets wrong by field.
		return malformedBody(strings.ReplaceAll(err.Error(), "\u00a0", " "))
	}
	return nil
}

// checkFields checks the members of a JSON object against md's fields
// before protojson decodes it, so that every problem is named by the
// field's proto (snake_case) name, or as sent when md has no such field.
func checkFields(value []byte, md protoreflect.MessageDescriptor) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return malformedBody("the body must be a JSON object")
	}
	var (
		fields     = md.Fields()
		seen       = map[protoreflect.Name]bool{}
		violations []*errdetails.BadRequest_FieldViolation
		names      []string
	)
	add := func(field, desc string) {
		violations = append(violations, &errdetails.BadRequest_FieldViolation{Field: field, Description: desc})
		names = append(names, field)
	}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		var raw json.RawMessage
		if err != nil || !ok || dec.Decode(&raw) != nil {
			return malformedBody("the body is not a valid JSON object")
		}
		fd := fields.ByName(protoreflect.Name(key))
		if fd == nil {
			fd = fields.ByJSONName(key)
		}
		switch {
		case fd == nil:
			add(key, "unknown field: this call does not take it")
		case seen[fd.Name()]:
			add(string(fd.Name()), "given twice")
		default:
			seen[fd.Name()] = true
			if desc := kindMismatch(fd, raw); desc != "" {
				add(string(fd.Name()), desc)
			}
		}
	}
	if len(violations) == 0 {
		return nil
	}
	return gatewayStatus(codes.InvalidArgument, service.ReasonInvalidArgument,
		"invalid request body: check "+strings.Join(names, ", "),
		&errdetails.BadRequest{FieldViolations: violations},
	).Err()
}

// kindMismatch says how raw is not a JSON value for fd, "" when it may be.
func kindMismatch(fd protoreflect.FieldDescriptor, raw json.RawMessage) string {
	if string(raw) == "null" {
		return ""
	}
	if fd.IsList() {
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return "must be a JSON array, not " + string(raw)
		}
		for _, it := range items {
			if d := scalarMismatch(fd, it); d != "" {
				return "each item " + d
			}
		}
		return ""
	}
	return scalarMismatch(fd, raw)
}

func scalarMismatch(fd protoreflect.FieldDescriptor, raw json.RawMessage) string {
	isNumber := raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		if raw[0] != '"' {
			return "must be a JSON string, not " + string(raw)
		}
	case protoreflect.BoolKind:
		if string(raw) != "true" && string(raw) != "false" {
			return "must be true or false, not " + string(raw)
		}
	case protoreflect.EnumKind:
		if raw[0] != '"' && !isNumber {
			return "must be one of the enum's value names, not " + string(raw)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		// Well-known types have JSON forms of their own: protojson decides.
	default: // numbers: a JSON number, or a string holding one
		if raw[0] != '"' && !isNumber {
			return "must be a number, not " + string(raw)
		}
	}
	return ""
}

func jsonErrorText(err error) string {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at offset %d: %v", syntax.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body is truncated"
	}
	return "malformed JSON: " + err.Error()
}

func malformedBody(msg string) error {
	return gatewayStatus(codes.InvalidArgument, ReasonMalformedBody, "the request body is not valid: "+msg).Err()
}

// gatewayStatus is a refusal the REST face makes itself: ErrorInfo with
// reason under the gateway's domain, then details.
func gatewayStatus(code codes.Code, reason, msg string, details ...protoadapt.MessageV1) *status.Status {
	st := status.New(code, msg)
	all := append([]protoadapt.MessageV1{}, details...)
	all = append(all, &errdetails.ErrorInfo{Reason: reason, Domain: service.GatewayErrorDomain})
	if d, err := st.WithDetails(all...); err == nil {
		st = d
	}
	return st
}

// unknownQueryStatus names the query parameters a call does not take.
func unknownQueryStatus(unknown, known []string) *status.Status {
	takes := "no query parameters"
	if len(known) > 0 {
		takes = "only " + strings.Join(known, ", ")
	}
	var violations []*errdetails.BadRequest_FieldViolation
	for _, name := range unknown {
		desc := "unknown query parameter: this call takes " + takes
		if alt, ok := upvestQueryNames[name]; ok {
			desc += " (Upvest's " + name + " is " + alt + " here)"
		}
		violations = append(violations, &errdetails.BadRequest_FieldViolation{Field: name, Description: desc})
	}
	noun := "parameter"
	if len(unknown) > 1 {
		noun = "parameters"
	}
	return gatewayStatus(codes.InvalidArgument, ReasonUnknownQueryParameter,
		"unknown query "+noun+" "+strings.Join(unknown, ", ")+": this call takes "+takes,
		&errdetails.BadRequest{FieldViolations: violations})
}

// upvestQueryNames are Upvest's list parameters, which callers who know
// Upvest's API send by habit.
var upvestQueryNames = map[string]string{
	"limit": "page_size", "offset": "page_token", "sort": "order_by", "order": "order_by",
}
