package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/problem"
	"github.com/upvest-gateway/gateway/internal/server"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/service"
)

// restProblem is a problem answer with its ErrorInfo read from details.
type restProblem struct {
	problem.Details
	reason, domain string
}

func readProblem(t *testing.T, res *http.Response, body []byte) restProblem {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("%d %s: %s", res.StatusCode, ct, body)
	}
	var p restProblem
	if err := json.Unmarshal(body, &p.Details); err != nil {
		t.Fatalf("problem: %v: %s", err, body)
	}
	for _, d := range p.Details.Details {
		var info struct {
			Type   string `json:"@type"`
			Reason string `json:"reason"`
			Domain string `json:"domain"`
		}
		if json.Unmarshal(d, &info) == nil && strings.HasSuffix(info.Type, "google.rpc.ErrorInfo") {
			p.reason, p.domain = info.Reason, info.Domain
		}
	}
	return p
}

func fieldsOf(p restProblem) []string {
	var fields []string
	for _, fv := range p.FieldViolations {
		fields = append(fields, fv.Field)
	}
	return fields
}

// TestRESTStrictInput: a REST request is taken exactly as sent, or refused
// with 400 naming what is wrong, by its REST (snake_case) name, under the
// gateway's ErrorInfo domain; nothing refused reaches Upvest.
func TestRESTStrictInput(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t, servertest.WithoutEvents())
	ag := uuid.NewString()
	topup := `{"account_group_id":"` + ag + `","cash_amount":"100.00","currency":"EUR"}`
	list := "/v1/account_groups/" + ag + "/payments/topups"
	tests := []struct {
		name, method, path, body string
		reason                   string
		fields                   []string
	}{
		{"data after the body", http.MethodPost, "/v1/payments/topups", topup + ` xyz`, server.ReasonMalformedBody, nil},
		{"two objects", http.MethodPost, "/v1/payments/topups", topup + topup, server.ReasonMalformedBody, nil},
		{"two objects apart", http.MethodPost, "/v1/payments/topups", topup + "\n" + `{"cash_amount":"5.00"}`, server.ReasonMalformedBody, nil},
		{"truncated", http.MethodPost, "/v1/payments/topups", `{"account_group_id":`, server.ReasonMalformedBody, nil},
		{"not an object", http.MethodPost, "/v1/payments/topups", `[1]`, server.ReasonMalformedBody, nil},
		{"number for a string, snake_case", http.MethodPost, "/v1/payments/topups", `{"cash_amount":1.5}`, service.ReasonInvalidArgument, []string{"cash_amount"}},
		{"number for a string, lowerCamelCase", http.MethodPost, "/v1/payments/topups", `{"cashAmount":1.5}`, service.ReasonInvalidArgument, []string{"cash_amount"}},
		{"unknown field, as sent", http.MethodPost, "/v1/payments/topups", `{"cash_amont":"1.00"}`, service.ReasonInvalidArgument, []string{"cash_amont"}},
		{"field given twice", http.MethodPost, "/v1/payments/topups", `{"currency":"EUR","currency":"EUR"}`, service.ReasonInvalidArgument, []string{"currency"}},
		{"validation", http.MethodPost, "/v1/payments/topups", `{"account_group_id":"` + ag + `","cash_amount":"1.5","currency":"EUR"}`, service.ReasonInvalidArgument, []string{"cash_amount"}},
		{"a typo in a query parameter", http.MethodGet, list + "?page_sise=2", "", server.ReasonUnknownQueryParameter, []string{"page_sise"}},
		{"Upvest's query parameters", http.MethodGet, list + "?limit=2&sort=id", "", server.ReasonUnknownQueryParameter, []string{"limit", "sort"}},
		{"a known and an unknown query parameter", http.MethodGet, list + "?page_size=2&offset=4", "", server.ReasonUnknownQueryParameter, []string{"offset"}},
		{"a query parameter on a create", http.MethodPost, "/v1/payments/topups?dry_run=true", topup, server.ReasonUnknownQueryParameter, []string{"dry_run"}},
		{"a query parameter on a get", http.MethodGet, "/v1/payments/topups/" + uuid.NewString() + "?expand=all", "", server.ReasonUnknownQueryParameter, []string{"expand"}},
		{"a query parameter on a stream", http.MethodGet, "/v1/payments/topups:watch?account_group=" + ag, "", server.ReasonUnknownQueryParameter, []string{"account_group"}},
		{"a path parameter in the query", http.MethodGet, list + "?account_group_id=" + ag, "", server.ReasonUnknownQueryParameter, []string{"account_group_id"}},
		{"a malformed query", http.MethodGet, list + "?page_size=%zz", "", server.ReasonMalformedQuery, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(g.Sim.Requests())
			res, body := g.Do(t, tc.method, tc.path, tc.body, http.Header{"Idempotency-Key": {uuid.NewString()}})
			p := readProblem(t, res, body)
			if res.StatusCode != http.StatusBadRequest || p.Code != "INVALID_ARGUMENT" || p.reason != tc.reason || p.domain != service.GatewayErrorDomain {
				t.Errorf("%d %s reason %s domain %s, want 400 INVALID_ARGUMENT %s %s: %s", res.StatusCode, p.Code, p.reason, p.domain, tc.reason, service.GatewayErrorDomain, body)
			}
			if got := fieldsOf(p); !slices.Equal(got, tc.fields) {
				t.Errorf("field violations %q, want %q", got, tc.fields)
			}
			for _, f := range tc.fields {
				if !strings.Contains(p.Detail, f) {
					t.Errorf("detail %q does not name %s", p.Detail, f)
				}
			}
			if strings.Contains(string(body), "cashAmount") {
				t.Errorf("the answer names a field in lowerCamelCase: %s", body)
			}
			if n := len(g.Sim.Requests()); n != before {
				t.Error("the request reached Upvest")
			}
		})
	}

	// What the contract allows still works.
	t.Run("accepted", func(t *testing.T) {
		res, body := g.Do(t, http.MethodPost, "/v1/payments/topups", topup+"\n", http.Header{"Idempotency-Key": {uuid.NewString()}})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("create with a trailing newline: %d %s", res.StatusCode, body)
		}
		res, body = g.Do(t, http.MethodGet, list+"?page_size=2&order_by=id%20desc&page_token=", "", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", res.StatusCode, body)
		}
	})
}

// TestErrorDomains: reasons the gateway makes are under its own domain,
// Upvest's under upvest.co, and an Upvest 400 names the field its detail
// names.
func TestErrorDomains(t *testing.T) {
	t.Parallel()
	g := servertest.Start(t)
	ag := uuid.NewString()
	tests := []struct {
		name, method, path, body string
		status                   int
		reason, domain           string
		fields                   []string
	}{
		{"validation", http.MethodPost, "/v1/payments/topups", `{"account_group_id":"x","cash_amount":"1.00","currency":"EUR"}`,
			400, service.ReasonInvalidArgument, service.GatewayErrorDomain, []string{"account_group_id"}},
		{"invalid resume token", http.MethodGet, "/v1/payments/topups:watch?resume_token=garbage", "",
			400, "INVALID_RESUME_TOKEN", service.GatewayErrorDomain, []string{"resume_token"}},
		{"no route", http.MethodGet, "/v1/nothing", "", 404, server.ReasonNoRoute, service.GatewayErrorDomain, nil},
		{"Upvest's 404", http.MethodGet, "/v1/payments/topups/" + uuid.NewString(), "", 404, "NOT_FOUND", service.UpvestErrorDomain, nil},
		// The gateway takes a zero amount; Upvest refuses it, naming the field.
		{"Upvest's 400", http.MethodPost, "/v1/payments/topups", `{"account_group_id":"` + ag + `","cash_amount":"0.00","currency":"EUR"}`,
			400, "BAD_REQUEST", service.UpvestErrorDomain, []string{"cash_amount"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := g.Do(t, tc.method, tc.path, tc.body, http.Header{"Idempotency-Key": {uuid.NewString()}})
			p := readProblem(t, res, body)
			if res.StatusCode != tc.status || p.reason != tc.reason || p.domain != tc.domain {
				t.Errorf("%d reason %s domain %s, want %d %s %s: %s", res.StatusCode, p.reason, p.domain, tc.status, tc.reason, tc.domain, body)
			}
			if got := fieldsOf(p); !slices.Equal(got, tc.fields) {
				t.Errorf("field violations %q, want %q", got, tc.fields)
			}
		})
	}

	// The same over gRPC.
	_, err := g.Topups().CreateTopup(ctxT(t), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "0.00", Currency: "EUR"})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("CreateTopup 0.00: %v", err)
	}
	var domains []string
	for _, d := range st.Details() {
		if ei, ok := d.(interface{ GetDomain() string }); ok {
			domains = append(domains, ei.GetDomain())
		}
	}
	if !slices.Equal(domains, []string{service.UpvestErrorDomain}) {
		t.Errorf("ErrorInfo domains %q, want upvest.co alone", domains)
	}
}
