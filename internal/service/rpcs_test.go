package service_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/server/servertest"
	"github.com/upvest-gateway/gateway/internal/upvestsim"
)

const pkg = "/upvest.gateway.v1."

// The unary RPCs and their REST routes (proto/upvest/gateway/v1/gateway.yaml).
func createVirtualCashIncrease() rpc {
	return rpc{pkg + "VirtualCashService/CreateVirtualCashIncrease", http.MethodPost, "/v1/virtual_cash_balances/increases"}
}
func createVirtualCashDecrease() rpc {
	return rpc{pkg + "VirtualCashService/CreateVirtualCashDecrease", http.MethodPost, "/v1/virtual_cash_balances/decreases"}
}
func cancelVirtualCashDecrease(id string) rpc {
	return rpc{pkg + "VirtualCashService/CancelVirtualCashDecrease", http.MethodDelete, "/v1/virtual_cash_balances/decreases/" + id}
}
func createTopup() rpc {
	return rpc{pkg + "TopupService/CreateTopup", http.MethodPost, "/v1/payments/topups"}
}
func getTopup(id string) rpc {
	return rpc{pkg + "TopupService/GetTopup", http.MethodGet, "/v1/payments/topups/" + id}
}
func listTopups(ag string) rpc {
	return rpc{pkg + "TopupService/ListTopups", http.MethodGet, "/v1/account_groups/" + ag + "/payments/topups"}
}
func cancelTopup(id string) rpc {
	return rpc{pkg + "TopupService/CancelTopup", http.MethodDelete, "/v1/payments/topups/" + id}
}
func createDirectDebit() rpc {
	return rpc{pkg + "PaymentsService/CreateDirectDebit", http.MethodPost, "/v1/payments/direct_debits"}
}
func getDirectDebit(id string) rpc {
	return rpc{pkg + "PaymentsService/GetDirectDebit", http.MethodGet, "/v1/payments/direct_debits/" + id}
}
func listDirectDebits(ag string) rpc {
	return rpc{pkg + "PaymentsService/ListDirectDebits", http.MethodGet, "/v1/account_groups/" + ag + "/payments/direct_debits"}
}
func createWithdrawal() rpc {
	return rpc{pkg + "PaymentsService/CreateWithdrawal", http.MethodPost, "/v1/payments/withdrawals"}
}
func getWithdrawal(id string) rpc {
	return rpc{pkg + "PaymentsService/GetWithdrawal", http.MethodGet, "/v1/payments/withdrawals/" + id}
}
func listWithdrawals(ag string) rpc {
	return rpc{pkg + "PaymentsService/ListWithdrawals", http.MethodGet, "/v1/account_groups/" + ag + "/payments/withdrawals"}
}
func cancelWithdrawal(id string) rpc {
	return rpc{pkg + "PaymentsService/CancelWithdrawal", http.MethodDelete, "/v1/payments/withdrawals/" + id}
}
func getCashBalance(ag string) rpc {
	return rpc{pkg + "CashBalanceService/GetCashBalance", http.MethodGet, "/v1/account_groups/" + ag + "/payments/cash_balance"}
}

func TestVirtualCashRPCs(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t)
			ag := uuid.NewString()

			key := uuid.NewString()
			var inc gatewayv1.CreateVirtualCashIncreaseResponse
			o := call(t, g, tr, createVirtualCashIncrease(), &gatewayv1.CreateVirtualCashIncreaseRequest{
				RequestId: key, AccountGroupId: ag, Amount: "250.50", Currency: "EUR",
			}, &inc)
			checkCreated(t, g, o, "/virtual_cash_balances/increases", key,
				map[string]string{"account_group_id": ag, "amount": "250.50", "currency": "EUR"})
			if s := inc.GetVirtualCashIncrease().GetStatus(); s != gatewayv1.VirtualCashIncreaseStatus_VIRTUAL_CASH_INCREASE_STATUS_ISSUED {
				t.Errorf("increase status = %v, want ISSUED", s)
			}
			matchesUpstream(t, inc.GetVirtualCashIncrease(), lastEventObject(t, g, inc.GetVirtualCashIncrease().GetId()))

			var dec gatewayv1.CreateVirtualCashDecreaseResponse
			key = uuid.NewString()
			o = call(t, g, tr, createVirtualCashDecrease(), &gatewayv1.CreateVirtualCashDecreaseRequest{
				RequestId: key, AccountGroupId: ag, Amount: "100.00", Currency: "EUR",
			}, &dec)
			checkCreated(t, g, o, "/virtual_cash_balances/decreases", key,
				map[string]string{"account_group_id": ag, "amount": "100.00", "currency": "EUR"})
			matchesUpstream(t, dec.GetVirtualCashDecrease(), lastEventObject(t, g, dec.GetVirtualCashDecrease().GetId()))

			id := dec.GetVirtualCashDecrease().GetId()
			o = call(t, g, tr, cancelVirtualCashDecrease(id), &gatewayv1.CancelVirtualCashDecreaseRequest{VirtualCashDecreaseId: id}, &gatewayv1.CancelVirtualCashDecreaseResponse{})
			checkOK(t, o)
			rec := checkSimRequest(t, g, http.MethodDelete, "/virtual_cash_balances/decreases/"+id, "", nil)
			checkRequestID(t, o, rec)
			if got := lastEventObject(t, g, id)["status"]; got != "CANCELLED" {
				t.Errorf("decrease after cancel: upstream status %v, want CANCELLED", got)
			}
		})
	}
}

func TestTopupRPCs(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t)
			ag := uuid.NewString()

			key := uuid.NewString()
			var created gatewayv1.CreateTopupResponse
			o := call(t, g, tr, createTopup(), &gatewayv1.CreateTopupRequest{
				RequestId: key, AccountGroupId: ag, CashAmount: "1000.00", Currency: "EUR",
			}, &created)
			checkCreated(t, g, o, "/payments/topups", key,
				map[string]string{"account_group_id": ag, "cash_amount": "1000.00", "currency": "EUR"})
			tp := created.GetTopup()
			if tp.GetStatus() != gatewayv1.TopupStatus_TOPUP_STATUS_CONFIRMED || tp.GetCashAmount() != "1000.00" {
				t.Errorf("created top-up = %v, want CONFIRMED 1000.00", tp)
			}
			matchesUpstream(t, tp, lastEventObject(t, g, tp.GetId()))

			var got gatewayv1.GetTopupResponse
			o = call(t, g, tr, getTopup(tp.GetId()), &gatewayv1.GetTopupRequest{TopupId: tp.GetId()}, &got)
			checkOK(t, o)
			checkRequestID(t, o, checkSimRequest(t, g, http.MethodGet, "/payments/topups/"+tp.GetId(), "", nil))
			if !proto.Equal(got.GetTopup(), tp) {
				t.Errorf("GetTopup = %v, want the created %v", got.GetTopup(), tp)
			}

			var listed gatewayv1.ListTopupsResponse
			o = call(t, g, tr, listTopups(ag), &gatewayv1.ListTopupsRequest{AccountGroupId: ag}, &listed)
			checkOK(t, o)
			rec := checkSimRequest(t, g, http.MethodGet, "/account_groups/"+ag+"/payments/topups", "", nil)
			checkQuery(t, rec, url.Values{"sort": {"created_at"}, "order": {"ASC"}})
			if len(listed.GetTopups()) != 1 || !proto.Equal(listed.GetTopups()[0], tp) || listed.GetTotalSize() != 1 || listed.GetNextPageToken() != "" {
				t.Errorf("ListTopups = %v, want the one top-up, total 1, no next page", &listed)
			}

			o = call(t, g, tr, cancelTopup(tp.GetId()), &gatewayv1.CancelTopupRequest{TopupId: tp.GetId()}, &gatewayv1.CancelTopupResponse{})
			checkOK(t, o)
			checkRequestID(t, o, checkSimRequest(t, g, http.MethodDelete, "/payments/topups/"+tp.GetId(), "", nil))
			o = call(t, g, tr, getTopup(tp.GetId()), &gatewayv1.GetTopupRequest{TopupId: tp.GetId()}, &got)
			checkOK(t, o)
			if got.GetTopup().GetStatus() != gatewayv1.TopupStatus_TOPUP_STATUS_CANCELLED {
				t.Errorf("top-up after cancel = %v, want CANCELLED", got.GetTopup().GetStatus())
			}
		})
	}
}

func TestPaymentsRPCs(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t)
			ag, user, mandate, refAcct := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()

			// Direct debits.
			key := uuid.NewString()
			var dd gatewayv1.CreateDirectDebitResponse
			o := call(t, g, tr, createDirectDebit(), &gatewayv1.CreateDirectDebitRequest{
				RequestId: key, UserId: user, AccountGroupId: ag, MandateId: mandate,
				CashAmount: "75.25", RemittanceInformation: "Invoice 2024/42 - thanks.",
			}, &dd)
			checkCreated(t, g, o, "/payments/direct_debits", key, map[string]string{
				"user_id": user, "account_group_id": ag, "mandate_id": mandate,
				"cash_amount": "75.25", "remittance_information": "Invoice 2024/42 - thanks.",
			})
			d := dd.GetDirectDebit()
			if d.GetStatus() != gatewayv1.DirectDebitStatus_DIRECT_DEBIT_STATUS_NEW {
				t.Errorf("direct debit status = %v, want NEW", d.GetStatus())
			}
			matchesUpstream(t, d, lastEventObject(t, g, d.GetId()))

			var gotDD gatewayv1.GetDirectDebitResponse
			o = call(t, g, tr, getDirectDebit(d.GetId()), &gatewayv1.GetDirectDebitRequest{DirectDebitId: d.GetId()}, &gotDD)
			checkOK(t, o)
			checkRequestID(t, o, checkSimRequest(t, g, http.MethodGet, "/payments/direct_debits/"+d.GetId(), "", nil))
			if !proto.Equal(gotDD.GetDirectDebit(), d) {
				t.Errorf("GetDirectDebit = %v, want %v", gotDD.GetDirectDebit(), d)
			}

			var ddList gatewayv1.ListDirectDebitsResponse
			o = call(t, g, tr, listDirectDebits(ag), &gatewayv1.ListDirectDebitsRequest{AccountGroupId: ag, PageSize: 10, OrderBy: "id desc"}, &ddList)
			checkOK(t, o)
			rec := checkSimRequest(t, g, http.MethodGet, "/account_groups/"+ag+"/payments/direct_debits", "", nil)
			checkQuery(t, rec, url.Values{"limit": {"10"}, "sort": {"id"}, "order": {"DESC"}})
			if len(ddList.GetDirectDebits()) != 1 || !proto.Equal(ddList.GetDirectDebits()[0], d) || ddList.GetTotalSize() != 1 {
				t.Errorf("ListDirectDebits = %v", &ddList)
			}

			// Withdrawals need cash available for withdrawal.
			if err := g.Sim.SetCashBalance(upvestsim.CashBalance{AccountGroupID: ag, Balance: "500", AvailableForWithdrawal: "500", AvailableForTrading: "500"}); err != nil {
				t.Fatal(err)
			}
			key = uuid.NewString()
			var wd gatewayv1.CreateWithdrawalResponse
			o = call(t, g, tr, createWithdrawal(), &gatewayv1.CreateWithdrawalRequest{
				RequestId: key, ReferenceAccountId: refAcct, AccountGroupId: ag, UserId: user, Amount: "120.00",
			}, &wd)
			checkCreated(t, g, o, "/payments/withdrawals", key, map[string]string{
				"reference_account_id": refAcct, "account_group_id": ag, "user_id": user, "amount": "120.00",
			})
			w := wd.GetWithdrawal()
			if w.GetStatus() != gatewayv1.WithdrawalStatus_WITHDRAWAL_STATUS_NEW || w.GetAmount() != "120.00" {
				t.Errorf("withdrawal = %v, want NEW 120.00", w)
			}
			matchesUpstream(t, w, lastEventObject(t, g, w.GetId()))

			var gotW gatewayv1.GetWithdrawalResponse
			o = call(t, g, tr, getWithdrawal(w.GetId()), &gatewayv1.GetWithdrawalRequest{WithdrawalId: w.GetId()}, &gotW)
			checkOK(t, o)
			checkRequestID(t, o, checkSimRequest(t, g, http.MethodGet, "/payments/withdrawals/"+w.GetId(), "", nil))
			if !proto.Equal(gotW.GetWithdrawal(), w) {
				t.Errorf("GetWithdrawal = %v, want %v", gotW.GetWithdrawal(), w)
			}

			var wList gatewayv1.ListWithdrawalsResponse
			o = call(t, g, tr, listWithdrawals(ag), &gatewayv1.ListWithdrawalsRequest{AccountGroupId: ag, OrderBy: "CREATED_AT Desc"}, &wList)
			checkOK(t, o)
			rec = checkSimRequest(t, g, http.MethodGet, "/account_groups/"+ag+"/payments/withdrawals", "", nil)
			checkQuery(t, rec, url.Values{"sort": {"created_at"}, "order": {"DESC"}})
			if len(wList.GetWithdrawals()) != 1 || !proto.Equal(wList.GetWithdrawals()[0], w) || wList.GetTotalSize() != 1 {
				t.Errorf("ListWithdrawals = %v", &wList)
			}

			o = call(t, g, tr, cancelWithdrawal(w.GetId()), &gatewayv1.CancelWithdrawalRequest{WithdrawalId: w.GetId()}, &gatewayv1.CancelWithdrawalResponse{})
			checkOK(t, o)
			checkRequestID(t, o, checkSimRequest(t, g, http.MethodDelete, "/payments/withdrawals/"+w.GetId(), "", nil))
			if got := lastEventObject(t, g, w.GetId())["status"]; got != "CANCELLED" {
				t.Errorf("withdrawal after cancel: upstream status %v, want CANCELLED", got)
			}
		})
	}
}

func TestCashBalanceRPCs(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			g := servertest.Start(t)
			ag := uuid.NewString()
			// Figures with many fraction digits and a negative one: they must
			// come through as the exact strings.
			want := upvestsim.CashBalance{
				AccountGroupID:         ag,
				Balance:                "1234.567890123456789012345678",
				LockedForTrading:       "0.1",
				PendingSettlement:      "12",
				AvailableForWithdrawal: "999999999999.99",
				AvailableForTrading:    "-3.5",
			}
			if err := g.Sim.SetCashBalance(want); err != nil {
				t.Fatal(err)
			}
			want = g.Sim.CashBalance(ag)

			var got gatewayv1.GetCashBalanceResponse
			o := call(t, g, tr, getCashBalance(ag), &gatewayv1.GetCashBalanceRequest{AccountGroupId: ag}, &got)
			checkOK(t, o)
			checkRequestID(t, o, checkSimRequest(t, g, http.MethodGet, "/account_groups/"+ag+"/payments/cash_balance", "", nil))
			b := got.GetCashBalance()
			if b.GetAccountGroupId() != ag || b.GetCurrency() != want.Currency || b.GetBalance() != want.Balance ||
				b.GetLockedForTrading() != want.LockedForTrading || b.GetPendingSettlement() != want.PendingSettlement ||
				b.GetAvailableForWithdrawal() != want.AvailableForWithdrawal || b.GetAvailableForTrading() != want.AvailableForTrading {
				t.Errorf("GetCashBalance = %v, want %+v", b, want)
			}
			if want.Balance != "1234.567890123456789012345678" {
				t.Errorf("simulator keeps balance %q; the test expects it unchanged", want.Balance)
			}
		})
	}
}

func checkOK(t *testing.T, o outcome) {
	t.Helper()
	if o.code != codes.OK {
		t.Fatalf("call failed: %v %s (details %v)", o.code, o.message, o.details)
	}
}

// checkCreated checks a creating call: success, one verified upstream POST
// with the key the gateway reports (wantKey, or a fresh UUIDv4 when wantKey
// is empty) and the body fields, and the upvest-request-id passed back.
func checkCreated(t *testing.T, g *servertest.Gateway, o outcome, path, wantKey string, body map[string]string) {
	t.Helper()
	checkOK(t, o)
	if wantKey != "" && o.idempotencyKey != wantKey {
		t.Errorf("response idempotency-key = %q, want the request_id %q", o.idempotencyKey, wantKey)
	}
	if wantKey == "" {
		if u, err := uuid.Parse(o.idempotencyKey); err != nil || u.Version() != 4 {
			t.Errorf("response idempotency-key = %q, want a generated UUIDv4", o.idempotencyKey)
		}
	}
	rec := checkSimRequest(t, g, http.MethodPost, path, o.idempotencyKey, body)
	checkRequestID(t, o, rec)
}

func checkRequestID(t *testing.T, o outcome, rec upvestsim.RequestRecord) {
	t.Helper()
	if o.upvestRequestID == "" || o.upvestRequestID != rec.RequestID {
		t.Errorf("response upvest-request-id = %q, want the simulator's %q", o.upvestRequestID, rec.RequestID)
	}
}

func checkQuery(t *testing.T, rec upvestsim.RequestRecord, want url.Values) {
	t.Helper()
	got, err := url.ParseQuery(rec.Query)
	if err != nil {
		t.Fatalf("query %q: %v", rec.Query, err)
	}
	if got.Encode() != want.Encode() {
		t.Errorf("upstream query = %q, want %q", got.Encode(), want.Encode())
	}
}

// lastEventObject is the resource as the simulator last reported it in a
// webhook event: the upstream's own JSON of it.
func lastEventObject(t *testing.T, g *servertest.Gateway, id string) map[string]any {
	t.Helper()
	var obj map[string]any
	for _, e := range g.Sim.Events() {
		var o map[string]any
		if json.Unmarshal(e.Object, &o) == nil && o["id"] == id {
			obj = o
		}
	}
	if obj == nil {
		t.Fatalf("the simulator emitted no event for %s", id)
	}
	return obj
}

// matchesUpstream checks msg field by field against the upstream JSON of the
// same resource: strings (ids, decimals) equal, enums named
// <PREFIX>_<upstream status>, timestamps the same instant, and no upstream
// field left behind.
func matchesUpstream(t *testing.T, msg proto.Message, obj map[string]any) {
	t.Helper()
	m := msg.ProtoReflect()
	fds := m.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		up, _ := obj[string(fd.Name())].(string)
		switch {
		case fd.Kind() == protoreflect.StringKind:
			if got := m.Get(fd).String(); got != up {
				t.Errorf("%s = %q, upstream has %q", fd.Name(), got, up)
			}
		case fd.Kind() == protoreflect.EnumKind:
			vals := fd.Enum().Values()
			prefix := strings.TrimSuffix(string(vals.ByNumber(0).Name()), "UNSPECIFIED")
			if got := string(vals.ByNumber(m.Get(fd).Enum()).Name()); got != prefix+up {
				t.Errorf("%s = %s, upstream has %q", fd.Name(), got, up)
			}
		case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
			want, err := time.Parse(time.RFC3339Nano, up)
			if err != nil {
				t.Errorf("upstream %s %q: %v", fd.Name(), up, err)
				continue
			}
			got := m.Get(fd).Message().Interface().(*timestamppb.Timestamp)
			if !got.AsTime().Equal(want) {
				t.Errorf("%s = %v, upstream has %v", fd.Name(), got.AsTime(), want)
			}
		}
	}
	for k := range obj {
		if fds.ByName(protoreflect.Name(k)) == nil {
			t.Errorf("upstream field %q has no counterpart in %s", k, m.Descriptor().FullName())
		}
	}
}
