package service

import (
	"context"

	"google.golang.org/grpc"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// TopupService implements gatewayv1.TopupServiceServer over Upvest's
// /payments/topups endpoints.
type TopupService struct {
	gatewayv1.UnimplementedTopupServiceServer
	backend
}

// NewTopupService returns the service calling Upvest through c.
func NewTopupService(c *upstream.Client, opts ...Option) *TopupService {
	return &TopupService{backend: newBackend(c, opts)}
}

// CreateTopup creates a top-up.
func (s *TopupService) CreateTopup(ctx context.Context, req *gatewayv1.CreateTopupRequest) (*gatewayv1.CreateTopupResponse, error) {
	body := upstream.CreateTopupRequest{AccountGroupID: req.GetAccountGroupId(), CashAmount: req.GetCashAmount(), Currency: req.GetCurrency()}
	t, err := create(ctx, &s.backend, req.GetRequestId(), func(v *validator) {
		v.id("account_group_id", body.AccountGroupID)
		v.amount("cash_amount", body.CashAmount)
		v.currency("currency", body.Currency)
	}, body, s.client.CreateTopup)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.CreateTopupResponse{Topup: topupToProto(t)}, nil
}

// GetTopup reads one top-up.
func (s *TopupService) GetTopup(ctx context.Context, req *gatewayv1.GetTopupRequest) (*gatewayv1.GetTopupResponse, error) {
	t, err := get(ctx, &s.backend, "topup_id", req.GetTopupId(), s.client.GetTopup)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.GetTopupResponse{Topup: topupToProto(t)}, nil
}

// ListTopups lists one page of an account group's top-ups.
func (s *TopupService) ListTopups(ctx context.Context, req *gatewayv1.ListTopupsRequest) (*gatewayv1.ListTopupsResponse, error) {
	p, err := list(ctx, &s.backend, req, s.client.ListTopups, topupToProto)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.ListTopupsResponse{Topups: p.items, NextPageToken: p.next, TotalSize: p.total}, nil
}

// CancelTopup cancels a top-up while it is NEW or CONFIRMED.
func (s *TopupService) CancelTopup(ctx context.Context, req *gatewayv1.CancelTopupRequest) (*gatewayv1.CancelTopupResponse, error) {
	if err := cancel(ctx, &s.backend, "topup_id", req.GetTopupId(), s.client.CancelTopup, readChecks(&s.backend, s.client.GetTopup)); err != nil {
		return nil, err
	}
	return &gatewayv1.CancelTopupResponse{}, nil
}

// topupEventTypes are the events of WatchTopupEvents.
var topupEventTypes = newEventTypes("TOPUP_EVENT_TYPE_UNSPECIFIED", map[gatewayv1.TopupEventType]string{
	gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_CONFIRMED: "TOPUP.CONFIRMED",
	gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_SETTLED:   "TOPUP.SETTLED",
	gatewayv1.TopupEventType_TOPUP_EVENT_TYPE_CANCELLED: "TOPUP.CANCELLED",
})

// WatchTopupEvents streams top-up events.
func (s *TopupService) WatchTopupEvents(req *gatewayv1.WatchTopupEventsRequest, stream grpc.ServerStreamingServer[gatewayv1.WatchTopupEventsResponse]) error {
	return watchEvents(stream, &s.backend, topupEventTypes, req.GetAccountGroupId(), req.GetEventTypes(), req.GetResumeToken(),
		func(token string, ev *events.Event) *gatewayv1.WatchTopupEventsResponse {
			resp := &gatewayv1.WatchTopupEventsResponse{ResumeToken: token}
			if ev == nil {
				resp.Kind = &gatewayv1.WatchTopupEventsResponse_Heartbeat{Heartbeat: heartbeat()}
			} else {
				resp.Kind = &gatewayv1.WatchTopupEventsResponse_Event{Event: &gatewayv1.TopupEvent{
					Id:        ev.ID,
					CreatedAt: timestamp(ev.CreatedAt),
					Type:      topupEventTypes.of(ev.Type),
					WebhookId: ev.WebhookID,
					Topup:     decodeObject(&s.backend, ev, topupToProto),
				}}
			}
			return resp
		})
}
