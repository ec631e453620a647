package upstream

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestParseProblem(t *testing.T) {
	const rid = "169ae4c7-ebd7-4041-94da-25369653eba7"
	problemJSON := http.Header{"Content-Type": {"application/problem+json"}}
	withID := http.Header{"Content-Type": {"application/problem+json"}, "Upvest-Request-Id": {rid}}
	huge := strings.Repeat("x", 1<<20)

	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		want   Error
	}{
		{
			name: "full problem", status: 422, header: withID,
			body: `{"type":"https://docs.upvest.co/errors/invalid_state","status":422,"title":"Unprocessable Entity","detail":"decrease is CONFIRMED","instance":"/virtual_cash_balances/decreases/x","request_id":"other"}`,
			want: Error{StatusCode: 422, Type: "https://docs.upvest.co/errors/invalid_state", Title: "Unprocessable Entity", Detail: "decrease is CONFIRMED", Instance: "/virtual_cash_balances/decreases/x", RequestID: rid},
		},
		{
			name: "minimal, as in the seeds", status: 404, header: problemJSON,
			body: `{"status": 404, "type": "not_found"}`,
			want: Error{StatusCode: 404, Type: "not_found", Title: "Not Found"},
		},
		{
			name: "request id from the body", status: 400, header: problemJSON,
			body: `{"status":400,"type":"bad_request","request_id":"abc-123"}`,
			want: Error{StatusCode: 400, Type: "bad_request", Title: "Bad Request", RequestID: "abc-123"},
		},
		{
			name: "body status disagrees: HTTP wins", status: 503, header: problemJSON,
			body: `{"status":200,"type":"method_not_allowed"}`,
			want: Error{StatusCode: 503, Type: "method_not_allowed", Title: "Service Unavailable"},
		},
		{
			name: "plain application/json", status: 409, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			body: `{"type":"conflict","detail":"in flight"}`,
			want: Error{StatusCode: 409, Type: "conflict", Title: "Conflict", Detail: "in flight"},
		},
		{
			name: "no content type, JSON body", status: 429, header: http.Header{"Retry-After": {"3"}},
			body: ` {"type":"too_many_requests"}`,
			want: Error{StatusCode: 429, Type: "too_many_requests", Title: "Too Many Requests", RetryAfter: 3 * time.Second},
		},
		{
			name: "HTML from a proxy", status: 502, header: http.Header{"Content-Type": {"text/html"}},
			body: "<html>\r\n<head><title>502 Bad Gateway</title><style>body{color:red}</style></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><script>alert(1)</script><hr><center>nginx</center></body></html>",
			want: Error{StatusCode: 502, Title: "Bad Gateway", Detail: "502 Bad Gateway 502 Bad Gateway nginx"},
		},
		{
			name: "empty", status: 500, header: problemJSON, body: "",
			want: Error{StatusCode: 500, Title: "Internal Server Error"},
		},
		{
			name: "nil header, unknown status", status: 599, body: "",
			want: Error{StatusCode: 599},
		},
		{
			name: "truncated JSON", status: 400, header: problemJSON,
			body: `{"type":"bad_request","status":4`,
			want: Error{StatusCode: 400, Title: "Bad Request", Detail: `{"type":"bad_request","status":4`},
		},
		{
			name: "wrong types", status: 403, header: problemJSON,
			body: `{"type":17,"status":"403","title":["x"],"detail":{"a":1},"instance":null,"request_id":5}`,
			want: Error{StatusCode: 403, Title: "Forbidden"},
		},
		{
			name: "JSON that is not an object", status: 500, header: problemJSON,
			body: `["type","oops"]`,
			want: Error{StatusCode: 500, Title: "Internal Server Error", Detail: `["type","oops"]`},
		},
		{
			name: "control characters and bidi overrides", status: 400, header: problemJSON,
			body: `{"type":"bad_request","detail":"line one\nFAKE LOG LINE\u202e\u0000 end\t\t!"}`,
			want: Error{StatusCode: 400, Type: "bad_request", Title: "Bad Request", Detail: "line one FAKE LOG LINE end !"},
		},
		{
			name: "header request id is sanitized", status: 500, header: http.Header{"Upvest-Request-Id": {"abc\x00\x1b[31mred"}},
			want: Error{StatusCode: 500, Title: "Internal Server Error", RequestID: "abc[31mred"},
		},
		{
			name: "plain text", status: 504, header: http.Header{"Content-Type": {"text/plain"}},
			body: "upstream request timeout",
			want: Error{StatusCode: 504, Title: "Gateway Timeout", Detail: "upstream request timeout"},
		},
		{
			name: "binary garbage", status: 500, header: http.Header{"Content-Type": {"application/octet-stream"}},
			body: "\xff\xfe\x00\x01ok\x80",
			want: Error{StatusCode: 500, Title: "Internal Server Error", Detail: "ok"},
		},
		{
			name: "huge text", status: 500, header: http.Header{"Content-Type": {"text/plain"}},
			body: huge,
			want: Error{StatusCode: 500, Title: "Internal Server Error", Detail: huge[:maxTextDetail]},
		},
		{
			name: "huge detail inside a problem", status: 400, header: problemJSON,
			body: `{"type":"bad_request","detail":"` + huge[:60000] + `"}`,
			want: Error{StatusCode: 400, Type: "bad_request", Title: "Bad Request", Detail: huge[:maxDetail]},
		},
		{
			name: "huge problem beyond the cap", status: 400, header: problemJSON,
			body: `{"type":"bad_request","detail":"` + huge + `"}`,
			want: Error{StatusCode: 400, Title: "Bad Request", Detail: (`{"type":"bad_request","detail":"` + huge)[:maxTextDetail]},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseProblem(tc.status, tc.header, []byte(tc.body))
			if *got != tc.want {
				t.Errorf("ParseProblem\n got %#v\nwant %#v", *got, tc.want)
			}
			_ = got.Error()
		})
	}
}

func TestErrorNeverCarriesTheBearerToken(t *testing.T) {
	f := newFakeUpstream(t)
	f.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		problem(w, 403, "forbidden", "token "+r.Header.Get("Authorization")+" lacks scope")
	})
	_, err := f.client(t).GetTopup(testContext(t), "x")
	e, ok := AsError(err)
	if !ok || e.StatusCode != 403 {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), tokenName(1)) {
		t.Errorf("bearer token in error: %v", err)
	}
	if !strings.Contains(e.Detail, "[REDACTED]") {
		t.Errorf("detail %q", e.Detail)
	}
}

func TestErrorReason(t *testing.T) {
	for typ, want := range map[string]string{
		"https://docs.upvest.co/errors/invalid_state": "invalid_state",
		"not_found": "not_found",
		"":          "http_418",
	} {
		if got := (&Error{StatusCode: 418, Type: typ}).ErrorReason(); got != want {
			t.Errorf("ErrorReason(%q) = %q, want %q", typ, got, want)
		}
	}
}

func FuzzParseProblem(f *testing.F) {
	f.Add(422, "application/problem+json", []byte(`{"type":"https://docs.upvest.co/errors/x","status":422,"title":"T","detail":"D","instance":"/i","request_id":"r"}`))
	f.Add(404, "application/json", []byte(`{"status": 404, "type": "not_found"}`))
	f.Add(502, "text/html", []byte(`<html><head><title>502</title><script>x</script></head><body>bad &amp; gateway</body></html>`))
	f.Add(500, "", []byte(``))
	f.Add(400, "application/problem+json", []byte(`{"type":"bad_request","status":4`))
	f.Add(403, "application/problem+json", []byte(`{"type":17,"title":["x"],"detail":{"a":1}}`))
	f.Add(429, "text/plain", []byte("\xff\xfe\u202e\x00 slow down\n\n"))
	f.Add(0, "application/json; charset=\"", []byte(`{"detail":"\ud800"}`))
	f.Add(-1, "<", []byte(`<script`))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		h := http.Header{"Content-Type": {contentType}, "Upvest-Request-Id": {string(body[:min(len(body), 40)])}}
		e := ParseProblem(status, h, body)
		if e.StatusCode != status {
			t.Fatalf("status %d, want %d", e.StatusCode, status)
		}
		for name, v := range map[string]struct {
			s     string
			limit int
		}{
			"type": {e.Type, maxURIish}, "title": {e.Title, maxTitle}, "detail": {e.Detail, maxDetail},
			"instance": {e.Instance, maxURIish}, "request_id": {e.RequestID, maxRequestID},
		} {
			if !utf8.ValidString(v.s) {
				t.Fatalf("%s is not UTF-8: %q", name, v.s)
			}
			if n := utf8.RuneCountInString(v.s); n > v.limit {
				t.Fatalf("%s has %d runes, limit %d", name, n, v.limit)
			}
			for _, r := range v.s {
				if !unicode.IsPrint(r) || r == utf8.RuneError {
					t.Fatalf("%s has unprintable %U: %q", name, r, v.s)
				}
			}
			if strings.HasPrefix(v.s, " ") || strings.HasSuffix(v.s, " ") || strings.Contains(v.s, "  ") {
				t.Fatalf("%s has stray spaces: %q", name, v.s)
			}
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative RetryAfter %v", e.RetryAfter)
		}
		if s := e.Error(); !strings.HasPrefix(s, "upvest: ") || strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("Error() = %q", s)
		}
		_ = e.ErrorReason()
	})
}
