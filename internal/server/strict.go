package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
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
	if err := m.Unmarshal(value, v); err != nil {
		msg, _ := v.(proto.Message)
		return bodyFieldError(err, msg)
	}
	return nil
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

// protojson's errors: "proto: (line 1:74): invalid value for string field
// cashAmount: 1.5", "… unknown field \"cash_amont\"", "… duplicate field
// \"currency\"", "proto: syntax error (line 1:2): unexpected token".
var (
	protojsonHead    = regexp.MustCompile(`^proto:\s*(?:syntax error\s*)?(?:\(line (\d+):(\d+)\):\s*)?`)
	protojsonInvalid = regexp.MustCompile(`^invalid value for (\w+) field (\w+): (.*)$`)
	protojsonNamed   = regexp.MustCompile(`^(unknown|duplicate) field "(.*)"$`)
)

// bodyFieldError turns protojson's error about msg's JSON into
// INVALID_ARGUMENT, with a field violation naming the field by its
// snake_case name where the error names one.
func bodyFieldError(err error, msg proto.Message) error {
	text := err.Error()
	where := ""
	if m := protojsonHead.FindStringSubmatch(text); m != nil {
		text = text[len(m[0]):]
		if m[1] != "" {
			where = fmt.Sprintf(" (line %s, column %s)", m[1], m[2])
		}
	}
	var field, desc string
	if m := protojsonInvalid.FindStringSubmatch(text); m != nil {
		field = protoFieldName(msg, m[2])
		switch m[1] {
		case "string":
			desc = "must be a JSON string, not " + m[3]
		case "enum":
			desc = "is not one of the enum's value names: " + m[3]
		default:
			desc = "is not a valid " + m[1] + ": " + m[3]
		}
	} else if m := protojsonNamed.FindStringSubmatch(text); m != nil {
		field, desc = protoFieldName(msg, m[2]), "given twice"
		if m[1] == "unknown" {
			field, desc = m[2], "unknown field: this call does not take it" // as sent
		}
	}
	if field == "" {
		return malformedBody(text + where)
	}
	return gatewayStatus(codes.InvalidArgument, service.ReasonInvalidArgument,
		"invalid request body: check "+field+where,
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}},
	).Err()
}

// protoFieldName is the field of msg that protojson named by its JSON name,
// by its proto name; name itself when msg has no such field.
func protoFieldName(msg proto.Message, name string) string {
	if msg == nil {
		return name
	}
	fields := msg.ProtoReflect().Descriptor().Fields()
	var fd protoreflect.FieldDescriptor
	if fd = fields.ByJSONName(name); fd == nil {
		fd = fields.ByName(protoreflect.Name(name))
	}
	if fd == nil {
		return name
	}
	return string(fd.Name())
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
