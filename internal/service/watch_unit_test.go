package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
)

// TestEventTypeTables: every event type an RPC defines (but UNSPECIFIED)
// maps onto one upstream type of the RPC's families and back, so a type
// added to the protos cannot be forgotten here.
func TestEventTypeTables(t *testing.T) {
	check := func(name string, values map[string]int32, families []string, byEnum func(int32) (string, bool), of func(string) int32) {
		t.Run(name, func(t *testing.T) {
			seen := map[string]bool{}
			for enumName, v := range values {
				typ, ok := byEnum(v)
				if v == 0 {
					if ok {
						t.Errorf("%s maps to %s", enumName, typ)
					}
					continue
				}
				if !ok {
					t.Errorf("%s has no upstream type", enumName)
					continue
				}
				fam, status, _ := strings.Cut(typ, ".")
				if !strings.Contains(strings.Join(families, ","), fam) || !strings.HasSuffix(enumName, "_"+status) || seen[typ] {
					t.Errorf("%s maps to %s", enumName, typ)
				}
				seen[typ] = true
				if of(typ) != v {
					t.Errorf("%s does not map back to %s", typ, enumName)
				}
			}
			if got := of(families[0] + ".SOMETHING_NEW"); got != 0 {
				t.Errorf("an unknown status maps to %d, want UNSPECIFIED", got)
			}
		})
	}
	check("virtual cash", gatewayv1.VirtualCashEventType_value, virtualCashEventTypes.families,
		func(v int32) (string, bool) {
			s, ok := virtualCashEventTypes.byEnum[gatewayv1.VirtualCashEventType(v)]
			return s, ok
		},
		func(s string) int32 { return int32(virtualCashEventTypes.of(s)) })
	check("topups", gatewayv1.TopupEventType_value, topupEventTypes.families,
		func(v int32) (string, bool) {
			s, ok := topupEventTypes.byEnum[gatewayv1.TopupEventType(v)]
			return s, ok
		},
		func(s string) int32 { return int32(topupEventTypes.of(s)) })
	check("payments", gatewayv1.PaymentEventType_value, paymentEventTypes.families,
		func(v int32) (string, bool) {
			s, ok := paymentEventTypes.byEnum[gatewayv1.PaymentEventType(v)]
			return s, ok
		},
		func(s string) int32 { return int32(paymentEventTypes.of(s)) })
	if got := fmt.Sprint(virtualCashEventTypes.families, topupEventTypes.families, paymentEventTypes.families); got !=
		"[VIRTUAL_CASH_DECREASE VIRTUAL_CASH_INCREASE] [TOPUP] [DIRECT_DEBIT WITHDRAWAL]" {
		t.Errorf("families: %s", got)
	}
}

// TestWatchStatus: how a subscription ends becomes a gRPC status with
// ErrorInfo, after the table in internal/events.
func TestWatchStatus(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	draining, stop := context.WithCancelCause(context.Background())
	stop(status.Error(codes.Unavailable, "shutting down"))
	upstreamErr := status.Error(codes.NotFound, "from upstream")
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		code   codes.Code
		reason string
		msg    string
	}{
		{"expired", context.Background(), fmt.Errorf("%w (the event log was re-created)", events.ErrTokenExpired), codes.OutOfRange, "RESUME_TOKEN_EXPIRED", "re-read the current state"},
		{"bad token", context.Background(), fmt.Errorf("%w: it belongs to another event log", events.ErrBadToken), codes.InvalidArgument, "INVALID_RESUME_TOKEN", "resume_token"},
		{"invalid filter", context.Background(), fmt.Errorf("%w: x", events.ErrInvalidFilter), codes.InvalidArgument, "INVALID_FILTER", "filter"},
		{"slow", context.Background(), events.ErrSlowSubscriber, codes.ResourceExhausted, "SLOW_SUBSCRIBER", "resume with the last resume_token"},
		{"unavailable", context.Background(), fmt.Errorf("%w: x", events.ErrUnavailable), codes.Unavailable, "EVENT_LOG_UNAVAILABLE", "retry"},
		{"closed", context.Background(), events.ErrClosed, codes.Unavailable, "EVENT_LOG_CLOSED", "shutting down"},
		{"canceled", canceled, context.Canceled, codes.Canceled, "", ""},
		{"draining", draining, context.Canceled, codes.Unavailable, "", "shutting down"},
		{"from send", context.Background(), upstreamErr, codes.NotFound, "", "from upstream"},
		{"unknown", context.Background(), errors.New("secret detail"), codes.Internal, "INTERNAL", "the event stream failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(watchStatus(tc.ctx, tc.err))
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) || strings.Contains(st.Message(), "secret") {
				t.Errorf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
			var reason string
			var badRequest bool
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					reason = d.GetReason()
					if d.GetDomain() != GatewayErrorDomain {
						t.Errorf("domain %q", d.GetDomain())
					}
				case *errdetails.BadRequest:
					badRequest = d.GetFieldViolations()[0].GetField() == "resume_token"
				}
			}
			if reason != tc.reason {
				t.Errorf("reason %q, want %q", reason, tc.reason)
			}
			if badRequest != (tc.reason == "INVALID_RESUME_TOKEN") {
				t.Errorf("BadRequest on resume_token: %t", badRequest)
			}
		})
	}
	if watchStatus(context.Background(), nil) != nil {
		t.Error("nil error: not nil")
	}
}
