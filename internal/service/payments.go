package service

import (
	"context"

	"google.golang.org/grpc"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// PaymentsService implements gatewayv1.PaymentsServiceServer over Upvest's
// /payments/direct_debits and /payments/withdrawals endpoints.
type PaymentsService struct {
	gatewayv1.UnimplementedPaymentsServiceServer
	backend
}

// NewPaymentsService returns the service calling Upvest through c.
func NewPaymentsService(c *upstream.Client, opts ...Option) *PaymentsService {
	return &PaymentsService{backend: newBackend(c, opts)}
}

// CreateDirectDebit creates a direct debit under a mandate.
func (s *PaymentsService) CreateDirectDebit(ctx context.Context, req *gatewayv1.CreateDirectDebitRequest) (*gatewayv1.CreateDirectDebitResponse, error) {
	body := upstream.CreateDirectDebitRequest{
		UserID:                req.GetUserId(),
		AccountGroupID:        req.GetAccountGroupId(),
		MandateID:             req.GetMandateId(),
		CashAmount:            req.GetCashAmount(),
		RemittanceInformation: req.GetRemittanceInformation(),
	}
	d, err := create(ctx, &s.backend, req.GetRequestId(), func(v *validator) {
		v.id("user_id", body.UserID)
		v.id("account_group_id", body.AccountGroupID)
		v.id("mandate_id", body.MandateID)
		v.amount("cash_amount", body.CashAmount)
		v.remittance("remittance_information", body.RemittanceInformation)
	}, body, s.client.CreateDirectDebit)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.CreateDirectDebitResponse{DirectDebit: directDebitToProto(d)}, nil
}

// GetDirectDebit reads one direct debit.
func (s *PaymentsService) GetDirectDebit(ctx context.Context, req *gatewayv1.GetDirectDebitRequest) (*gatewayv1.GetDirectDebitResponse, error) {
	d, err := get(ctx, &s.backend, "direct_debit_id", req.GetDirectDebitId(), s.client.GetDirectDebit)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.GetDirectDebitResponse{DirectDebit: directDebitToProto(d)}, nil
}

// ListDirectDebits lists one page of an account group's direct debits.
func (s *PaymentsService) ListDirectDebits(ctx context.Context, req *gatewayv1.ListDirectDebitsRequest) (*gatewayv1.ListDirectDebitsResponse, error) {
	p, err := list(ctx, &s.backend, req, s.client.ListDirectDebits, directDebitToProto)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.ListDirectDebitsResponse{DirectDebits: p.items, NextPageToken: p.next, TotalSize: p.total}, nil
}

// CreateWithdrawal creates a withdrawal to a reference account.
func (s *PaymentsService) CreateWithdrawal(ctx context.Context, req *gatewayv1.CreateWithdrawalRequest) (*gatewayv1.CreateWithdrawalResponse, error) {
	body := upstream.CreateWithdrawalRequest{
		ReferenceAccountID:    req.GetReferenceAccountId(),
		AccountGroupID:        req.GetAccountGroupId(),
		UserID:                req.GetUserId(),
		Amount:                req.GetAmount(),
		RemittanceInformation: req.GetRemittanceInformation(),
	}
	w, err := create(ctx, &s.backend, req.GetRequestId(), func(v *validator) {
		v.id("reference_account_id", body.ReferenceAccountID)
		v.id("account_group_id", body.AccountGroupID)
		v.id("user_id", body.UserID)
		v.amount("amount", body.Amount)
		v.remittance("remittance_information", body.RemittanceInformation)
	}, body, s.client.CreateWithdrawal)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.CreateWithdrawalResponse{Withdrawal: withdrawalToProto(w)}, nil
}

// GetWithdrawal reads one withdrawal.
func (s *PaymentsService) GetWithdrawal(ctx context.Context, req *gatewayv1.GetWithdrawalRequest) (*gatewayv1.GetWithdrawalResponse, error) {
	w, err := get(ctx, &s.backend, "withdrawal_id", req.GetWithdrawalId(), s.client.GetWithdrawal)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.GetWithdrawalResponse{Withdrawal: withdrawalToProto(w)}, nil
}

// ListWithdrawals lists one page of an account group's withdrawals.
func (s *PaymentsService) ListWithdrawals(ctx context.Context, req *gatewayv1.ListWithdrawalsRequest) (*gatewayv1.ListWithdrawalsResponse, error) {
	p, err := list(ctx, &s.backend, req, s.client.ListWithdrawals, withdrawalToProto)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.ListWithdrawalsResponse{Withdrawals: p.items, NextPageToken: p.next, TotalSize: p.total}, nil
}

// CancelWithdrawal cancels a withdrawal while it is NEW.
func (s *PaymentsService) CancelWithdrawal(ctx context.Context, req *gatewayv1.CancelWithdrawalRequest) (*gatewayv1.CancelWithdrawalResponse, error) {
	if err := cancel(ctx, &s.backend, "withdrawal_id", req.GetWithdrawalId(), s.client.CancelWithdrawal, readChecks(&s.backend, s.client.GetWithdrawal)); err != nil {
		return nil, err
	}
	return &gatewayv1.CancelWithdrawalResponse{}, nil
}

// paymentEventTypes are the events of WatchPaymentEvents.
var paymentEventTypes = newEventTypes("PAYMENT_EVENT_TYPE_UNSPECIFIED", map[gatewayv1.PaymentEventType]string{
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_DIRECT_DEBIT_NEW:        "DIRECT_DEBIT.NEW",
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_DIRECT_DEBIT_PROCESSING: "DIRECT_DEBIT.PROCESSING",
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_DIRECT_DEBIT_CONFIRMED:  "DIRECT_DEBIT.CONFIRMED",
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_DIRECT_DEBIT_CANCELLED:  "DIRECT_DEBIT.CANCELLED",
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_WITHDRAWAL_NEW:          "WITHDRAWAL.NEW",
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_WITHDRAWAL_PROCESSING:   "WITHDRAWAL.PROCESSING",
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_WITHDRAWAL_CONFIRMED:    "WITHDRAWAL.CONFIRMED",
	gatewayv1.PaymentEventType_PAYMENT_EVENT_TYPE_WITHDRAWAL_CANCELLED:    "WITHDRAWAL.CANCELLED",
})

// WatchPaymentEvents streams direct debit and withdrawal events.
func (s *PaymentsService) WatchPaymentEvents(req *gatewayv1.WatchPaymentEventsRequest, stream grpc.ServerStreamingServer[gatewayv1.WatchPaymentEventsResponse]) error {
	return watchEvents(stream, &s.backend, paymentEventTypes, req.GetAccountGroupId(), req.GetEventTypes(), req.GetResumeToken(),
		func(token string, ev *events.Event) *gatewayv1.WatchPaymentEventsResponse {
			resp := &gatewayv1.WatchPaymentEventsResponse{ResumeToken: token}
			if ev == nil {
				resp.Kind = &gatewayv1.WatchPaymentEventsResponse_Heartbeat{Heartbeat: heartbeat()}
			} else {
				resp.Kind = &gatewayv1.WatchPaymentEventsResponse_Event{Event: s.paymentEvent(ev)}
			}
			return resp
		})
}

func (s *PaymentsService) paymentEvent(ev *events.Event) *gatewayv1.PaymentEvent {
	e := &gatewayv1.PaymentEvent{Id: ev.ID, CreatedAt: timestamp(ev.CreatedAt), Type: paymentEventTypes.of(ev.Type), WebhookId: ev.WebhookID}
	switch ev.Family() {
	case events.FamilyDirectDebit:
		if o := decodeObject(&s.backend, ev, directDebitToProto); o != nil {
			e.Object = &gatewayv1.PaymentEvent_DirectDebit{DirectDebit: o}
		}
	case events.FamilyWithdrawal:
		if o := decodeObject(&s.backend, ev, withdrawalToProto); o != nil {
			e.Object = &gatewayv1.PaymentEvent_Withdrawal{Withdrawal: o}
		}
	}
	return e
}
