package server_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/upvest-gateway/gateway/gen/openapi"
	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

type oasDoc struct {
	OpenAPI    string                             `json:"openapi"`
	Security   []map[string][]string              `json:"security"`
	Paths      map[string]map[string]oasOperation `json:"paths"`
	Components struct {
		Responses       map[string]oasResponse     `json:"responses"`
		SecuritySchemes map[string]map[string]any  `json:"securitySchemes"`
		Schemas         map[string]json.RawMessage `json:"schemas"`
		Parameters      map[string]map[string]any  `json:"parameters"`
	} `json:"components"`
}

type oasOperation struct {
	OperationID string           `json:"operationId"`
	Parameters  []map[string]any `json:"parameters"`
	Responses   map[string]struct {
		Ref string `json:"$ref"`
		oasResponse
	} `json:"responses"`
}

type oasResponse struct {
	Headers map[string]any            `json:"headers"`
	Content map[string]map[string]any `json:"content"`
}

// TestOpenAPIContract: the description states what the REST face does:
// problem+json on every error, the idempotency headers, the streams' two
// media types, the security schemes; and the problem schema has every
// member internal/problem writes.
func TestOpenAPIContract(t *testing.T) {
	t.Parallel()
	var doc oasDoc
	if err := json.Unmarshal(openapi.Gateway, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	if doc.Components.SecuritySchemes["mutualTLS"]["type"] != "mutualTLS" || doc.Components.SecuritySchemes["bearerAuth"]["scheme"] != "bearer" || len(doc.Security) != 3 {
		t.Errorf("security: %v %v", doc.Security, doc.Components.SecuritySchemes)
	}
	for name, r := range doc.Components.Responses {
		if r.Content[problem.ContentType]["schema"] == nil || len(r.Content) != 1 {
			t.Errorf("response %s is not problem+json alone: %v", name, r.Content)
		}
	}
	var p struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(doc.Components.Schemas["Problem"], &p); err != nil {
		t.Fatal(err)
	}
	written, _ := json.Marshal(problem.Details{FieldViolations: []problem.FieldViolation{{}}, Details: []json.RawMessage{[]byte("{}")},
		Title: "t", Detail: "d", Instance: "i", Code: "c", RequestID: "r"})
	var members map[string]any
	_ = json.Unmarshal(written, &members)
	for m := range members {
		if _, ok := p.Properties[m]; !ok {
			t.Errorf("the Problem schema lacks %q, which internal/problem writes", m)
		}
	}

	streams := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			where := strings.ToUpper(method) + " " + path
			ok := op.Responses["200"]
			if ok.Content == nil {
				t.Errorf("%s: no 200 content", where)
				continue
			}
			for code, r := range op.Responses {
				if code != "200" && !strings.HasPrefix(r.Ref, "#/components/responses/") {
					t.Errorf("%s: %s is not a problem response", where, code)
				}
			}
			if _, ok := op.Responses["default"]; !ok {
				t.Errorf("%s: no default (problem) response", where)
			}
			if _, ok := ok.Headers["Upvest-Request-Id"]; !ok {
				t.Errorf("%s: no Upvest-Request-Id header", where)
			}
			if strings.HasSuffix(path, ":watch") {
				streams++
				if ok.Content[server.NDJSONContentType] == nil || ok.Content[server.EventStreamContentType] == nil || len(ok.Content) != 2 {
					t.Errorf("%s: stream media types %v", where, ok.Content)
				}
				if !hasParam(op, "#/components/parameters/LastEventID") {
					t.Errorf("%s: no Last-Event-ID", where)
				}
				continue
			}
			if ok.Content["application/json"] == nil {
				t.Errorf("%s: 200 is not application/json", where)
			}
			if method == "post" {
				if _, ok := ok.Headers["Idempotency-Key"]; !ok {
					t.Errorf("%s: no Idempotency-Key response header", where)
				}
				if !hasParam(op, "#/components/parameters/IdempotencyKey") {
					t.Errorf("%s: no Idempotency-Key request header", where)
				}
			}
		}
	}
	if streams != 4 {
		t.Errorf("%d streams described, want 4", streams)
	}
}

func hasParam(op oasOperation, ref string) bool {
	for _, p := range op.Parameters {
		if p["$ref"] == ref {
			return true
		}
	}
	return false
}

// TestOpenAPIRoutesServed: every operation of the description is served:
// no call to it ends in "no such route".
func TestOpenAPIRoutesServed(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, servertest.WithoutEvents())
	var doc oasDoc
	if err := json.Unmarshal(openapi.Gateway, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	for path, ops := range doc.Paths {
		for method := range ops {
			m := strings.ToUpper(method)
			body := ""
			if m == http.MethodPost {
				body = "{}"
			}
			res, b := g.Do(t, m, param.ReplaceAllStringFunc(path, func(string) string { return uuid.NewString() }), body, nil)
			if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusMethodNotAllowed {
				if p := readProblem(t, res, b); p.reason == server.ReasonNoRoute || p.reason == server.ReasonHTTPMethodNotAllowed {
					t.Errorf("%s %s: %d %s", m, path, res.StatusCode, b)
				}
			}
		}
	}
}
