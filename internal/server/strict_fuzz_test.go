package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
)

// FuzzStrictJSON: a REST body is decoded only when it is exactly one JSON
// value; anything else is an INVALID_ARGUMENT status, never a panic.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"account_group_id":"2596db3b-0d03-4651-9eda-970910479dfb","cash_amount":"1.00","currency":"EUR"}`,
		`{"cash_amount":"1.00"} xyz`, `{}{}`, `{"cashAmount":1.5}`, `{"cash_amont":"1"}`, `[1]`, ``, ` `, `{"currency":"EUR","currency":"EUR"}`, `{`,
	} {
		f.Add([]byte(s))
	}
	m := &strictJSON{runtime.JSONPb{UnmarshalOptions: protojson.UnmarshalOptions{}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := m.NewDecoder(bytes.NewReader(body)).Decode(new(gatewayv1.CreateTopupRequest))
		switch {
		case err == nil:
			dec := json.NewDecoder(bytes.NewReader(body))
			var v json.RawMessage
			if dec.Decode(&v) != nil || len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
				t.Errorf("%q decoded, but it is not exactly one JSON value", body)
			}
		case errors.Is(err, io.EOF):
			if len(bytes.TrimSpace(body)) != 0 {
				t.Errorf("%q: io.EOF for a body that is not empty", body)
			}
		default:
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%q: %v, want INVALID_ARGUMENT", body, err)
			}
		}
	})
}
