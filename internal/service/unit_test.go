package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

func TestStatusFromError(t *testing.T) {
	const rid = "5f0c6f1e-0d4b-4a53-9b65-7c7f8c9a0b1c"
	upErr := func(status int, word string) *upstream.Error {
		return &upstream.Error{StatusCode: status, Type: "https://docs.upvest.co/errors/" + word, Title: "T", Detail: "D", RequestID: rid}
	}
	tests := []struct {
		name   string
		err    error
		code   codes.Code
		reason string
		domain string // "" for the gateway's own
	}{
		{"401 after refresh", func() error { e := upErr(401, "unauthorized"); e.Refreshed = true; return e }(), codes.Internal, "UNAUTHORIZED", UpvestErrorDomain},
		{"401", upErr(401, "unauthorized"), codes.Internal, "UNAUTHORIZED", UpvestErrorDomain},
		{"token request 400", fmt.Errorf("%w: %w", upstream.ErrTokenRequest, upErr(400, "invalid_client")), codes.Internal, "INVALID_CLIENT", UpvestErrorDomain},
		{"token request 503", fmt.Errorf("%w: %w", upstream.ErrTokenRequest, upErr(503, "service_unavailable")), codes.Unavailable, "SERVICE_UNAVAILABLE", UpvestErrorDomain},
		{"406", upErr(406, "not_acceptable"), codes.Internal, "NOT_ACCEPTABLE", UpvestErrorDomain},
		{"409 after retries", fmt.Errorf("upvest: X: giving up after 4 attempts: %w", upErr(409, "conflict")), codes.Aborted, "CONFLICT", UpvestErrorDomain},
		{"410", upErr(410, "gone"), codes.Internal, "GONE", UpvestErrorDomain},
		{"no problem type", &upstream.Error{StatusCode: 502, RequestID: rid}, codes.Unavailable, "HTTP_502", UpvestErrorDomain},
		{"deadline", fmt.Errorf("upvest: X: %w (last error: boom)", context.DeadlineExceeded), codes.DeadlineExceeded, "DEADLINE_EXCEEDED", ""},
		{"canceled", fmt.Errorf("upvest: X: %w", context.Canceled), codes.Canceled, "CANCELED", ""},
		{"transport", &upstream.TransportError{Op: "GetTopup", Err: errors.New("connection refused")}, codes.Unavailable, "UPSTREAM_UNREACHABLE", ""},
		{"invalid argument", fmt.Errorf("upvest: X: %w: limit 5000 is outside 0..1000", upstream.ErrInvalidArgument), codes.InvalidArgument, "INVALID_ARGUMENT", ""},
		{"unexpected", errors.New("decoding the answer: secret-ish detail"), codes.Internal, "INTERNAL", ""},
		{"outcome unknown", &upstream.OutcomeUnknownError{Op: "CreateTopup", IdempotencyKey: rid, Attempts: 3, Err: context.DeadlineExceeded}, codes.Unavailable, "OUTCOME_UNKNOWN", ""},
		{"outcome unknown after an answer", &upstream.OutcomeUnknownError{Op: "CreateTopup", IdempotencyKey: rid, Attempts: 3, Err: upErr(504, "gateway_timeout")}, codes.Unavailable, "OUTCOME_UNKNOWN", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(statusFromError(tc.err, upstream.ResponseInfo{}))
			if st.Code() != tc.code {
				t.Errorf("code = %v, want %v (%s)", st.Code(), tc.code, st.Message())
			}
			var ei *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if e, ok := d.(*errdetails.ErrorInfo); ok {
					ei = e
				}
			}
			domain := cmp.Or(tc.domain, GatewayErrorDomain)
			if ei == nil || ei.GetReason() != tc.reason || ei.GetDomain() != domain {
				t.Errorf("ErrorInfo = %v, want reason %s in %s", ei, tc.reason, domain)
			}
			if tc.reason == "OUTCOME_UNKNOWN" && (ei.GetMetadata()["idempotency_key"] != rid || !strings.Contains(st.Message(), rid)) {
				t.Errorf("OUTCOME_UNKNOWN does not give the key to retry with: %v %q", ei, st.Message())
			}
			if strings.Contains(st.Message(), "secret-ish") || strings.Contains(st.Message(), "connection refused") {
				t.Errorf("message %q passes on raw error text", st.Message())
			}
		})
	}
}

func TestStatusFromErrorRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		retryAfter, want time.Duration
	}{{0, time.Second}, {7 * time.Second, 7 * time.Second}} {
		err := statusFromError(&upstream.Error{StatusCode: 429, RetryAfter: tc.retryAfter}, upstream.ResponseInfo{RequestID: "r"})
		var got time.Duration
		for _, d := range status.Convert(err).Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				got = ri.GetRetryDelay().AsDuration()
			}
		}
		if got != tc.want {
			t.Errorf("Retry-After %v: RetryInfo %v, want %v", tc.retryAfter, got, tc.want)
		}
	}
}

func TestUpperSnake(t *testing.T) {
	for in, want := range map[string]string{
		"not_found":               "NOT_FOUND",
		"missing-idempotency-key": "MISSING_IDEMPOTENCY_KEY",
		"http_404":                "HTTP_404",
		"404":                     "UPSTREAM_404",
		"":                        "UPSTREAM",
		"__weird..word__":         "WEIRD_WORD",
		strings.Repeat("a", 100):  strings.Repeat("A", 63),
	} {
		if got := upperSnake(in); got != want {
			t.Errorf("upperSnake(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnumOf(t *testing.T) {
	for word, want := range map[string]gatewayv1.TopupStatus{
		"CONFIRMED":   gatewayv1.TopupStatus_TOPUP_STATUS_CONFIRMED,
		"SETTLED":     gatewayv1.TopupStatus_TOPUP_STATUS_SETTLED,
		"REFUNDED":    gatewayv1.TopupStatus_TOPUP_STATUS_UNSPECIFIED, // a status this version does not know
		"confirmed":   gatewayv1.TopupStatus_TOPUP_STATUS_UNSPECIFIED,
		"":            gatewayv1.TopupStatus_TOPUP_STATUS_UNSPECIFIED,
		"UNSPECIFIED": gatewayv1.TopupStatus_TOPUP_STATUS_UNSPECIFIED,
	} {
		if got := enumOf[gatewayv1.TopupStatus](gatewayv1.TopupStatus_value, "TOPUP_STATUS_", word); got != want {
			t.Errorf("enumOf(%q) = %v, want %v", word, got, want)
		}
	}
	if got := timestamp(time.Time{}); got != nil {
		t.Errorf("timestamp(zero) = %v, want nil", got)
	}
}

func TestPageToken(t *testing.T) {
	a := scopeOf("ag-1", "created_at", "ASC")
	for _, off := range []int{0, 1, 2, 1000, maxPageOffset} {
		got, ok := decodePageToken(encodePageToken(off, a), a)
		if !ok || got != off {
			t.Errorf("round trip of %d = %d, %v", off, got, ok)
		}
	}
	tok := encodePageToken(4, a)
	for name, s := range map[string]pageScope{
		"other group": scopeOf("ag-2", "created_at", "ASC"),
		"other sort":  scopeOf("ag-1", "id", "ASC"),
		"other order": scopeOf("ag-1", "created_at", "DESC"),
	} {
		if _, ok := decodePageToken(tok, s); ok {
			t.Errorf("a token of another list (%s) was accepted", name)
		}
	}
	if _, ok := decodePageToken(encodePageToken(maxPageOffset+1, a), a); ok {
		t.Error("an offset beyond int32 was accepted")
	}
	if _, ok := decodePageToken(tok+"AA", a); ok {
		t.Error("a token with trailing bytes was accepted")
	}
}

func TestOrderBy(t *testing.T) {
	for in, want := range map[string][2]string{
		"":                     {"created_at", "ASC"},
		"created_at":           {"created_at", "ASC"},
		"id":                   {"id", "ASC"},
		"created_at desc":      {"created_at", "DESC"},
		"ID ASC":               {"id", "ASC"},
		"  created_at   DESC ": {"created_at", "DESC"},
	} {
		v := &validator{opts: &options{}}
		s, o := v.orderBy("order_by", in)
		if v.err() != nil || s != want[0] || o != want[1] {
			t.Errorf("orderBy(%q) = %s %s, %v; want %v", in, s, o, v.err(), want)
		}
	}
}

func TestCanonicalKey(t *testing.T) {
	// Upper and lower case are one key.
	u, lower := "3F2504E0-4F89-41D3-9A0C-0305E82C3301", "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	for in, want := range map[string]string{
		u:                                      lower,
		strings.ReplaceAll(u, "-", ""):         lower,
		"3f2504e04f8941d3-9a0c0305e82c3301":    "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		"3f2504e0-4f89-01d3-9a0c-0305e82c3301": "", // version 0
		"3f2504e0-4f89-61d3-9a0c-0305e82c3301": "", // version 6
		"3f2504e0-4f89-41d3-ca0c-0305e82c3301": "", // variant c
		"3f2504e0-4f89-41d3-9a0c-0305e82c330":  "",
		"":                                     "",
	} {
		got, ok := canonicalKey(in)
		if got != want || ok != (want != "") {
			t.Errorf("canonicalKey(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestIdempotencyKeyDuplicateHeaders(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		IdempotencyKeyMetadata, uuid.NewString(), IdempotencyKeyMetadata, uuid.NewString()))
	v := &validator{opts: &options{}}
	if k := v.idempotencyKey(ctx, ""); k != "" || v.err() == nil {
		t.Errorf("two different Idempotency-Key values gave key %q, err %v", k, v.err())
	}
}

// FuzzPageToken: decoding caller-supplied tokens never panics, and what it
// accepts re-encodes to the same token.
func FuzzPageToken(f *testing.F) {
	s := scopeOf("ag", "created_at", "ASC")
	f.Add(encodePageToken(2, s))
	f.Add(encodePageToken(maxPageOffset, s))
	f.Add("")
	f.Add("AQ")
	f.Add("////")
	f.Fuzz(func(t *testing.T, tok string) {
		off, ok := decodePageToken(tok, s)
		if !ok {
			return
		}
		if off < 0 || off > maxPageOffset {
			t.Fatalf("decoded offset %d out of range", off)
		}
		if again := encodePageToken(off, s); again != tok {
			t.Fatalf("token %q decodes to %d, which encodes as %q", tok, off, again)
		}
	})
}

// FuzzValidators: the field checks never panic, and what they accept is what
// Upvest accepts.
func FuzzValidators(f *testing.F) {
	f.Add("created_at desc", "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "200.00", "Invoice 1")
	f.Add("ID", "3f2504e04f8941d39a0c0305e82c3301", "1e3", "ü")
	f.Fuzz(func(t *testing.T, orderBy, key, amount, remittance string) {
		v := &validator{opts: &options{}}
		s, o := v.orderBy("order_by", orderBy)
		if (s != "created_at" && s != "id") || (o != "ASC" && o != "DESC") {
			t.Fatalf("orderBy(%q) = %q %q", orderBy, s, o)
		}
		if k, ok := canonicalKey(key); ok {
			u, err := uuid.Parse(k)
			if err != nil || len(k) != 36 || u.Version() < 1 || u.Version() > 5 {
				t.Fatalf("canonicalKey(%q) = %q, not a v1-5 UUID", key, k)
			}
		}
		v = &validator{opts: &options{}}
		v.amount("a", amount)
		if v.err() == nil && (len(amount) > 12 || strings.ContainsAny(amount, "-+eE ")) {
			t.Fatalf("amount %q accepted", amount)
		}
		v = &validator{opts: &options{}}
		v.remittance("r", remittance)
		if v.err() == nil && (len(remittance) > 140 || strings.ContainsAny(remittance, "\n\r\t#\"")) {
			t.Fatalf("remittance %q accepted", remittance)
		}
	})
}
