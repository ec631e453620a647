package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/upvest-gateway/gateway/internal/problem"
)

func TestFromStatus(t *testing.T) {
	t.Parallel()
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.ErrorInfo{Reason: "TOO_MANY_REQUESTS", Domain: "upvest.co", Metadata: map[string]string{"problem_type": "https://docs.upvest.co/errors/too_many_requests"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "amount", Description: "bad"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	problem.Write(rec, problem.FromStatus(http.StatusTooManyRequests, st))
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("status %d", rec.Code)
	}
	h := rec.Header()
	if h.Get("Content-Type") != problem.ContentType || h.Get("Retry-After") != "2" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", h)
	}
	var p problem.Details
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "https://docs.upvest.co/errors/too_many_requests" || p.Status != 429 || p.Title != "Too Many Requests" ||
		p.Detail != "slow down" || p.Code != "RESOURCE_EXHAUSTED" || len(p.Details) != 3 ||
		len(p.FieldViolations) != 1 || p.FieldViolations[0].Field != "amount" {
		t.Errorf("problem %+v", p)
	}
}

func TestFromStatusGatewayReason(t *testing.T) {
	t.Parallel()
	st, _ := status.New(codes.Unavailable, "draining").WithDetails(&errdetails.ErrorInfo{Reason: "SHUTTING_DOWN", Domain: "upvest-gateway"})
	if p := problem.FromStatus(503, st); p.Type != problem.TypePrefix+"shutting_down" {
		t.Errorf("type %q", p.Type)
	}
	if p := problem.FromStatus(404, status.New(codes.NotFound, "x")); p.Type != "about:blank" || p.Title != "Not Found" {
		t.Errorf("plain status: %+v", p)
	}
	if p := problem.FromStatus(499, status.New(codes.Canceled, "x")); p.Title != "Client Closed Request" {
		t.Errorf("499 title %q", p.Title)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	p := problem.New(http.StatusUnauthorized, rpccode.Code_UNAUTHENTICATED, "unauthorized", "bad signature")
	if p.Type != problem.TypePrefix+"unauthorized" || p.Code != "UNAUTHENTICATED" || p.Status != 401 || p.Detail != "bad signature" {
		t.Errorf("%+v", p)
	}
	var back problem.Details
	if err := json.Unmarshal(p.Marshal(), &back); err != nil || back.Type != p.Type {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestWithRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {300 * time.Millisecond, "1"}, {1500 * time.Millisecond, "2"}, {time.Minute, "60"}} {
		w := httptest.NewRecorder()
		problem.Write(w, problem.New(http.StatusTooManyRequests, rpccode.Code_RESOURCE_EXHAUSTED, "rate_limited", "slow down").WithRetryAfter(tc.d))
		if got := w.Header().Get("Retry-After"); got != tc.want || w.Code != http.StatusTooManyRequests {
			t.Errorf("WithRetryAfter(%v): %d Retry-After %q, want %q", tc.d, w.Code, got, tc.want)
		}
	}
}
