package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

// transport is how a test reaches the gateway: its gRPC port, or its REST
// face with a real HTTP client.
type transport string

const (
	viaGRPC transport = "grpc"
	viaREST transport = "rest"
)

var transports = []transport{viaGRPC, viaREST}

// rpc names one unary RPC on both faces.
type rpc struct {
	method     string // full gRPC method, e.g. /upvest.gateway.v1.TopupService/CreateTopup
	httpMethod string
	path       string // REST path; list RPCs add their paging fields as query parameters
}

// outcome is what a call returned on either face.
type outcome struct {
	code            codes.Code
	message         string
	details         []any  // gRPC: the status details; REST: decoded from the problem's details
	idempotencyKey  string // response header
	upvestRequestID string // response header
	httpStatus      int    // REST only
	problem         *problem.Details
	header          http.Header // REST only
}

func (o outcome) fields() []string {
	var fs []string
	for _, d := range o.details {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fs = append(fs, fv.GetField())
			}
		}
	}
	return fs
}

func detail[T proto.Message](o outcome) (T, bool) {
	for _, d := range o.details {
		if t, ok := d.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// call invokes r with req over tr, filling resp on success.
func call(t *testing.T, g *servertest.Gateway, tr transport, r rpc, req, resp proto.Message, header ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch tr {
	case viaGRPC:
		if len(header) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, header...)
		}
		var md metadata.MD
		err := g.Conn.Invoke(ctx, r.method, req, resp, grpc.Header(&md))
		st := status.Convert(err)
		return outcome{
			code:            st.Code(),
			message:         st.Message(),
			details:         st.Details(),
			idempotencyKey:  first(md["idempotency-key"]),
			upvestRequestID: first(md["upvest-request-id"]),
		}
	default:
		return callREST(t, g, r, req, resp, header...)
	}
}

func callREST(t *testing.T, g *servertest.Gateway, r rpc, req, resp proto.Message, header ...string) outcome {
	t.Helper()
	path, body := r.path, ""
	if r.httpMethod == http.MethodPost {
		b, err := protojson.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	} else if q := listQuery(req); q != "" {
		path += "?" + q
	}
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	res, b := g.Do(t, r.httpMethod, path, body, h)
	o := outcome{
		httpStatus:      res.StatusCode,
		header:          res.Header,
		idempotencyKey:  res.Header.Get("Idempotency-Key"),
		upvestRequestID: res.Header.Get("Upvest-Request-Id"),
	}
	if res.StatusCode == http.StatusOK {
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("REST %s %s: content type %q", r.httpMethod, path, ct)
		}
		if err := protojson.Unmarshal(b, resp); err != nil {
			t.Fatalf("REST %s %s: decoding %s: %v", r.httpMethod, path, b, err)
		}
		return o
	}
	if ct := res.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("REST %s %s: status %d with content type %q, want %s: %s", r.httpMethod, path, res.StatusCode, ct, problem.ContentType, b)
	}
	var p problem.Details
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("REST %s %s: problem %s: %v", r.httpMethod, path, b, err)
	}
	if p.Status != res.StatusCode || p.Title == "" || p.Type == "" {
		t.Errorf("REST problem %s: status/title/type inconsistent with HTTP %d", b, res.StatusCode)
	}
	o.problem = &p
	o.code = codes.Code(rpccode.Code_value[p.Code])
	o.message = p.Detail
	for _, raw := range p.Details {
		var a struct {
			Type string `json:"@type"`
		}
		_ = json.Unmarshal(raw, &a)
		var m proto.Message
		switch a.Type {
		case "type.googleapis.com/google.rpc.BadRequest":
			m = &errdetails.BadRequest{}
		case "type.googleapis.com/google.rpc.ErrorInfo":
			m = &errdetails.ErrorInfo{}
		case "type.googleapis.com/google.rpc.RequestInfo":
			m = &errdetails.RequestInfo{}
		case "type.googleapis.com/google.rpc.RetryInfo":
			m = &errdetails.RetryInfo{}
		case "type.googleapis.com/google.rpc.PreconditionFailure":
			m = &errdetails.PreconditionFailure{}
		default:
			t.Errorf("REST problem: unexpected detail %s", raw)
			continue
		}
		// The detail is an Any in JSON form: drop @type to read the message.
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(raw, &fields)
		delete(fields, "@type")
		inner, _ := json.Marshal(fields)
		if err := protojson.Unmarshal(inner, m); err != nil {
			t.Errorf("REST problem detail %s: %v", raw, err)
			continue
		}
		o.details = append(o.details, m)
	}
	return o
}

// listQuery renders the paging fields of a list request as REST query
// parameters.
func listQuery(req proto.Message) string {
	type lister interface {
		GetPageSize() int32
		GetPageToken() string
		GetOrderBy() string
	}
	l, ok := req.(lister)
	if !ok {
		return ""
	}
	q := url.Values{}
	if l.GetPageSize() != 0 {
		q.Set("page_size", strconv.Itoa(int(l.GetPageSize())))
	}
	if l.GetPageToken() != "" {
		q.Set("page_token", l.GetPageToken())
	}
	if l.GetOrderBy() != "" {
		q.Set("order_by", l.GetOrderBy())
	}
	return q.Encode()
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// simRequests returns the API requests (not token requests) the simulator
// saw with this method and path.
func simRequests(g *servertest.Gateway, method, path string) []upvestsim.RequestRecord {
	var out []upvestsim.RequestRecord
	for _, r := range g.Sim.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// apiRequests counts the requests the simulator saw, token requests
// included, but not the webhook receiver's key fetches: those follow the
// simulator's deliveries, not the calls under test.
func apiRequests(g *servertest.Gateway) int {
	n := 0
	for _, r := range g.Sim.Requests() {
		if r.Path != "/auth/verify_keys" {
			n++
		}
	}
	return n
}

// checkSimRequest asserts that the simulator saw exactly one request with
// method and path, verified with the tenant's key and accepted, carrying
// idempotency-key wantKey (none when wantKey is ""), and a JSON body with
// wantBody's fields (no body when wantBody is nil).
func checkSimRequest(t *testing.T, g *servertest.Gateway, method, path, wantKey string, wantBody map[string]string) upvestsim.RequestRecord {
	t.Helper()
	recs := simRequests(g, method, path)
	if len(recs) != 1 {
		t.Fatalf("upstream saw %d requests %s %s, want 1", len(recs), method, path)
	}
	r := recs[0]
	if r.Status < 200 || r.Status > 299 || r.Reason != "ok" {
		t.Errorf("upstream answered %s %s with %d (%s)", method, path, r.Status, r.Reason)
	}
	if r.KeyID != g.KeyID {
		t.Errorf("upstream verified %s %s with key %q, want %q", method, path, r.KeyID, g.KeyID)
	}
	if got := r.Header.Get("Idempotency-Key"); got != wantKey {
		t.Errorf("upstream %s %s idempotency-key = %q, want %q", method, path, got, wantKey)
	}
	if wantBody == nil {
		if r.Body != "" {
			t.Errorf("upstream %s %s body = %s, want none", method, path, r.Body)
		}
		return r
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
		t.Fatalf("upstream %s %s body %q: %v", method, path, r.Body, err)
	}
	for k, want := range wantBody {
		if got[k] != want {
			t.Errorf("upstream %s %s body[%s] = %v, want %q", method, path, k, got[k], want)
		}
	}
	for k := range got {
		if _, ok := wantBody[k]; !ok {
			t.Errorf("upstream %s %s body has unexpected field %s=%v", method, path, k, got[k])
		}
	}
	return r
}
