package service_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
)

// TestInvalidArgument: every malformed request is refused with
// INVALID_ARGUMENT naming all the bad fields (proto field names), over gRPC
// and as a 400 problem over REST, and costs no upstream request.
func TestInvalidArgument(t *testing.T) {
	g := servertest.Start(t)
	ag, other := uuid.NewString(), uuid.NewString()

	// A genuine page token of ag's top-ups, sorted by created_at ascending.
	for range 2 {
		o := call(t, g, viaGRPC, createTopup(), &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "1.00", Currency: "EUR"}, &gatewayv1.CreateTopupResponse{})
		checkOK(t, o)
	}
	var first gatewayv1.ListTopupsResponse
	checkOK(t, call(t, g, viaGRPC, listTopups(ag), &gatewayv1.ListTopupsRequest{AccountGroupId: ag, PageSize: 1}, &first))
	token := first.GetNextPageToken()
	if token == "" {
		t.Fatal("no next_page_token after the first of two top-ups")
	}

	valid := func() *gatewayv1.CreateTopupRequest {
		return &gatewayv1.CreateTopupRequest{RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "10.00", Currency: "EUR"}
	}
	topup := func(f func(*gatewayv1.CreateTopupRequest)) *gatewayv1.CreateTopupRequest {
		r := valid()
		f(r)
		return r
	}
	withdrawal := func(f func(*gatewayv1.CreateWithdrawalRequest)) *gatewayv1.CreateWithdrawalRequest {
		r := &gatewayv1.CreateWithdrawalRequest{RequestId: uuid.NewString(), ReferenceAccountId: uuid.NewString(), AccountGroupId: ag, UserId: uuid.NewString(), Amount: "10.00"}
		f(r)
		return r
	}
	list := func(f func(*gatewayv1.ListTopupsRequest)) *gatewayv1.ListTopupsRequest {
		r := &gatewayv1.ListTopupsRequest{AccountGroupId: ag}
		f(r)
		return r
	}

	tests := []struct {
		name     string
		rpc      rpc
		req      proto.Message
		want     []string // the violated fields, in any order
		grpcOnly bool     // not expressible as a REST request (an empty path segment)
	}{
		{name: "everything wrong at once", rpc: createTopup(), req: &gatewayv1.CreateTopupRequest{
			RequestId: "nope", AccountGroupId: "nope", CashAmount: "1.5", Currency: "USD",
		}, want: []string{"request_id", "account_group_id", "cash_amount", "currency"}},
		{name: "missing everything", rpc: createTopup(), req: &gatewayv1.CreateTopupRequest{},
			want: []string{"request_id", "account_group_id", "cash_amount", "currency"}},

		{name: "amount 1.5", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.CashAmount = "1.5" }), want: []string{"cash_amount"}},
		{name: "amount -1", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.CashAmount = "-1" }), want: []string{"cash_amount"}},
		{name: "amount 1e3", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.CashAmount = "1e3" }), want: []string{"cash_amount"}},
		{name: "amount 10 digits", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.CashAmount = "1234567890" }), want: []string{"cash_amount"}},
		{name: "amount 3 decimals", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.CashAmount = "1.000" }), want: []string{"cash_amount"}},
		{name: "amount with space", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.CashAmount = " 1.00" }), want: []string{"cash_amount"}},
		{name: "amount comma", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.CashAmount = "1,00" }), want: []string{"cash_amount"}},
		{name: "virtual cash amount", rpc: createVirtualCashIncrease(), req: &gatewayv1.CreateVirtualCashIncreaseRequest{
			RequestId: uuid.NewString(), AccountGroupId: ag, Amount: "0.5", Currency: "EUR",
		}, want: []string{"amount"}},

		{name: "uuid too short", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.AccountGroupId = ag[:35] }), want: []string{"account_group_id"}},
		{name: "uuid without hyphens", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.AccountGroupId = strings.ReplaceAll(ag, "-", "") }), want: []string{"account_group_id"}},
		{name: "uuid not hex", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.AccountGroupId = "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz" }), want: []string{"account_group_id"}},
		{name: "uuid path traversal", rpc: getTopup("..%2F..%2Fauth%2Ftoken"), req: &gatewayv1.GetTopupRequest{TopupId: "../../auth/token"}, want: []string{"topup_id"}, grpcOnly: true},
		{name: "get topup bad id", rpc: getTopup("abc"), req: &gatewayv1.GetTopupRequest{TopupId: "abc"}, want: []string{"topup_id"}},
		{name: "get topup no id", rpc: getTopup(""), req: &gatewayv1.GetTopupRequest{}, want: []string{"topup_id"}, grpcOnly: true},
		{name: "cancel withdrawal bad id", rpc: cancelWithdrawal("1234"), req: &gatewayv1.CancelWithdrawalRequest{WithdrawalId: "1234"}, want: []string{"withdrawal_id"}},
		{name: "cancel decrease bad id", rpc: cancelVirtualCashDecrease("x"), req: &gatewayv1.CancelVirtualCashDecreaseRequest{VirtualCashDecreaseId: "x"}, want: []string{"virtual_cash_decrease_id"}},
		{name: "get direct debit bad id", rpc: getDirectDebit("x"), req: &gatewayv1.GetDirectDebitRequest{DirectDebitId: "x"}, want: []string{"direct_debit_id"}},
		{name: "cash balance bad id", rpc: getCashBalance("x"), req: &gatewayv1.GetCashBalanceRequest{AccountGroupId: "x"}, want: []string{"account_group_id"}},

		{name: "remittance with #", rpc: createWithdrawal(), req: withdrawal(func(r *gatewayv1.CreateWithdrawalRequest) { r.RemittanceInformation = "Invoice #42" }), want: []string{"remittance_information"}},
		{name: "remittance with umlaut", rpc: createWithdrawal(), req: withdrawal(func(r *gatewayv1.CreateWithdrawalRequest) { r.RemittanceInformation = "Müller" }), want: []string{"remittance_information"}},
		{name: "remittance 141 chars", rpc: createWithdrawal(), req: withdrawal(func(r *gatewayv1.CreateWithdrawalRequest) { r.RemittanceInformation = strings.Repeat("a", 141) }), want: []string{"remittance_information"}},
		{name: "remittance newline", rpc: createWithdrawal(), req: withdrawal(func(r *gatewayv1.CreateWithdrawalRequest) { r.RemittanceInformation = "a\nb" }), want: []string{"remittance_information"}},
		{name: "direct debit fields", rpc: createDirectDebit(), req: &gatewayv1.CreateDirectDebitRequest{
			RequestId: uuid.NewString(), AccountGroupId: ag, CashAmount: "1.00", RemittanceInformation: "ok; fine",
		}, want: []string{"user_id", "mandate_id"}},

		{name: "currency lower case", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.Currency = "eur" }), want: []string{"currency"}},
		{name: "currency not allowed", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.Currency = "GBP" }), want: []string{"currency"}},
		{name: "currency missing", rpc: createVirtualCashDecrease(), req: &gatewayv1.CreateVirtualCashDecreaseRequest{RequestId: uuid.NewString(), AccountGroupId: ag, Amount: "1.00"}, want: []string{"currency"}},

		{name: "page_size -1", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.PageSize = -1 }), want: []string{"page_size"}},
		{name: "page_size 1001", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.PageSize = 1001 }), want: []string{"page_size"}},
		{name: "order_by field", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.OrderBy = "amount" }), want: []string{"order_by"}},
		{name: "order_by direction", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.OrderBy = "created_at up" }), want: []string{"order_by"}},
		{name: "order_by extra word", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.OrderBy = "id desc id" }), want: []string{"order_by"}},
		{name: "order_by two fields", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.OrderBy = "id,created_at" }), want: []string{"order_by"}},
		{name: "page_token garbage", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.PageToken = "garbage!" }), want: []string{"page_token"}},
		{name: "page_token truncated", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.PageToken = token[:len(token)-2] }), want: []string{"page_token"}},
		{name: "page_token of another account group", rpc: listTopups(other), req: &gatewayv1.ListTopupsRequest{AccountGroupId: other, PageToken: token}, want: []string{"page_token"}},
		{name: "page_token of another order", rpc: listTopups(ag), req: list(func(r *gatewayv1.ListTopupsRequest) { r.PageToken, r.OrderBy = token, "created_at desc" }), want: []string{"page_token"}},
		{name: "page_token of another list", rpc: listWithdrawals(other), req: &gatewayv1.ListWithdrawalsRequest{AccountGroupId: other, PageToken: token}, want: []string{"page_token"}},
		{name: "list all wrong", rpc: listDirectDebits("x"), req: &gatewayv1.ListDirectDebitsRequest{AccountGroupId: "x", PageSize: 5000, OrderBy: "name", PageToken: "AAAA"},
			want: []string{"account_group_id", "page_size", "order_by", "page_token"}},

		{name: "request_id not a uuid", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.RequestId = "order-42" }), want: []string{"request_id"}},
		{name: "request_id version 0", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.RequestId = "00000000-0000-0000-0000-000000000000" }), want: []string{"request_id"}},
		{name: "request_id version 6", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.RequestId = "1ec9414c-232a-6b00-b3c8-9e6bdeced846" }), want: []string{"request_id"}},
		{name: "request_id version 7", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.RequestId = "018f6b1e-7c4a-7d3e-9a1b-2c3d4e5f6a7b" }), want: []string{"request_id"}},
		{name: "request_id variant c", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.RequestId = "3b241101-e2bb-4255-c8ca-d2c3e4f5a6b7" }), want: []string{"request_id"}},
		{name: "request_id with braces", rpc: createTopup(), req: topup(func(r *gatewayv1.CreateTopupRequest) { r.RequestId = "{" + uuid.NewString() + "}" }), want: []string{"request_id"}},
	}
	for _, tr := range transports {
		for _, tc := range tests {
			if tc.grpcOnly && tr == viaREST {
				continue
			}
			t.Run(string(tr)+"/"+tc.name, func(t *testing.T) {
				before := apiRequests(g)
				resp := tc.req.ProtoReflect().Type().New().Interface() // any message: it must stay unfilled
				o := call(t, g, tr, tc.rpc, tc.req, resp)
				if o.code != codes.InvalidArgument {
					t.Fatalf("code = %v (%s), want InvalidArgument", o.code, o.message)
				}
				got, want := o.fields(), slices.Clone(tc.want)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("violated fields = %q, want %q", got, want)
				}
				if tr == viaREST {
					if o.httpStatus != 400 {
						t.Errorf("HTTP status = %d, want 400", o.httpStatus)
					}
					var pf []string
					for _, fv := range o.problem.FieldViolations {
						pf = append(pf, fv.Field)
					}
					slices.Sort(pf)
					if !slices.Equal(pf, want) {
						t.Errorf("problem field_violations = %q, want %q", pf, want)
					}
				}
				if n := apiRequests(g); n != before {
					t.Errorf("an invalid request reached the upstream: %d requests, had %d", n, before)
				}
			})
		}
	}
}
