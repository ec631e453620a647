package service

import (
	"cmp"
	"context"
	"path"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/statusindex"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// VirtualCashService implements gatewayv1.VirtualCashServiceServer over
// Upvest's /virtual_cash_balances endpoints.
type VirtualCashService struct {
	gatewayv1.UnimplementedVirtualCashServiceServer
	backend
}

// NewVirtualCashService returns the service calling Upvest through c.
func NewVirtualCashService(c *upstream.Client, opts ...Option) *VirtualCashService {
	return &VirtualCashService{backend: newBackend(c, opts)}
}

// CreateVirtualCashIncrease credits virtual cash to an account group.
func (s *VirtualCashService) CreateVirtualCashIncrease(ctx context.Context, req *gatewayv1.CreateVirtualCashIncreaseRequest) (*gatewayv1.CreateVirtualCashIncreaseResponse, error) {
	body := upstream.VirtualCashRequest{AccountGroupID: req.GetAccountGroupId(), Amount: req.GetAmount(), Currency: req.GetCurrency()}
	inc, err := create(ctx, &s.backend, req.GetRequestId(), checkVirtualCash(body), body, s.client.CreateVirtualCashIncrease)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.CreateVirtualCashIncreaseResponse{VirtualCashIncrease: virtualCashIncreaseToProto(inc)}, nil
}

// CreateVirtualCashDecrease debits virtual cash from an account group.
func (s *VirtualCashService) CreateVirtualCashDecrease(ctx context.Context, req *gatewayv1.CreateVirtualCashDecreaseRequest) (*gatewayv1.CreateVirtualCashDecreaseResponse, error) {
	body := upstream.VirtualCashRequest{AccountGroupID: req.GetAccountGroupId(), Amount: req.GetAmount(), Currency: req.GetCurrency()}
	dec, err := create(ctx, &s.backend, req.GetRequestId(), checkVirtualCash(body), body, s.client.CreateVirtualCashDecrease)
	if err != nil {
		return nil, err
	}
	s.recordDecrease(ctx, dec)
	return &gatewayv1.CreateVirtualCashDecreaseResponse{VirtualCashDecrease: virtualCashDecreaseToProto(dec)}, nil
}

// recordDecrease tells the status index of a decrease Upvest created, so
// that its account group is known at once; the webhook events bring the
// same later, so a failure here loses nothing for good.
func (s *VirtualCashService) recordDecrease(ctx context.Context, dec *upstream.VirtualCashDecrease) {
	ix := s.opts.statusIndex
	if ix == nil {
		return
	}
	err := ix.Record(context.WithoutCancel(ctx), statusindex.KindVirtualCashDecrease, dec.ID,
		statusindex.Entry{AccountGroupID: dec.AccountGroupID, Status: dec.Status, At: cmp.Or(dec.UpdatedAt, dec.CreatedAt)})
	if err != nil {
		s.opts.logger.WarnContext(ctx, "status index: recording a decrease failed; its events will", "virtual_cash_decrease_id", dec.ID, "err", err)
	}
}

// decreaseChecks answer a cancel's questions from the status index, as
// Upvest has no way to read a decrease: its account group, and once Upvest
// refused the cancel, whether the decrease is cancelled, waiting (within
// the call's deadline) for its events if the index does not know yet.
func (s *VirtualCashService) decreaseChecks() cancelChecks {
	ix := s.opts.statusIndex
	if ix == nil {
		return cancelChecks{}
	}
	return cancelChecks{
		accountGroup: func(ctx context.Context, id string) (string, error) {
			e, ok, err := ix.Get(ctx, statusindex.KindVirtualCashDecrease, id)
			switch {
			case err != nil:
				return "", gatewayStatus(codes.Unavailable, "STATUS_INDEX_UNAVAILABLE", "the gateway cannot check this decrease's account group now; retry")
			case !ok || e.AccountGroupID == "":
				method, _ := grpc.Method(ctx)
				return "", gatewayStatus(codes.PermissionDenied, "ACCOUNT_GROUP_UNKNOWN",
					path.Base(method)+": this caller may use only some account groups, and the gateway does not know this decrease's")
			}
			return e.AccountGroupID, nil
		},
		cancelled: func(ctx context.Context, id string) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, decreaseSettleWait)
			defer cancel()
			// Upvest refuses a cancel once the decrease is CONFIRMED or
			// CANCELLED; wait until the index knows which.
			e, err := ix.Wait(ctx, statusindex.KindVirtualCashDecrease, id, func(e statusindex.Entry) bool {
				return e.Status == upstream.StatusCancelled || e.Status == upstream.StatusConfirmed
			})
			if err != nil {
				return false, err
			}
			return e.Status == upstream.StatusCancelled, nil
		},
	}
}

// decreaseSettleWait bounds the wait for a decrease's events after Upvest
// refused its cancel (the call's own deadline may end it sooner).
const decreaseSettleWait = 10 * time.Second

// CancelVirtualCashDecrease cancels a decrease while it is ISSUED or QUEUED.
func (s *VirtualCashService) CancelVirtualCashDecrease(ctx context.Context, req *gatewayv1.CancelVirtualCashDecreaseRequest) (*gatewayv1.CancelVirtualCashDecreaseResponse, error) {
	if err := cancel(ctx, &s.backend, "virtual_cash_decrease_id", req.GetVirtualCashDecreaseId(), s.client.CancelVirtualCashDecrease, s.decreaseChecks()); err != nil {
		return nil, err
	}
	return &gatewayv1.CancelVirtualCashDecreaseResponse{}, nil
}

// checkVirtualCash validates the fields both virtual cash requests share.
func checkVirtualCash(b upstream.VirtualCashRequest) func(*validator) {
	return func(v *validator) {
		v.id("account_group_id", b.AccountGroupID)
		v.amount("amount", b.Amount)
		v.currency("currency", b.Currency)
	}
}

// virtualCashEventTypes are the events of WatchVirtualCashEvents.
var virtualCashEventTypes = newEventTypes("VIRTUAL_CASH_EVENT_TYPE_UNSPECIFIED", map[gatewayv1.VirtualCashEventType]string{
	gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_INCREASE_ISSUED:    "VIRTUAL_CASH_INCREASE.ISSUED",
	gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_INCREASE_CONFIRMED: "VIRTUAL_CASH_INCREASE.CONFIRMED",
	gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_DECREASE_ISSUED:    "VIRTUAL_CASH_DECREASE.ISSUED",
	gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_DECREASE_CONFIRMED: "VIRTUAL_CASH_DECREASE.CONFIRMED",
	gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_DECREASE_QUEUED:    "VIRTUAL_CASH_DECREASE.QUEUED",
	gatewayv1.VirtualCashEventType_VIRTUAL_CASH_EVENT_TYPE_DECREASE_CANCELLED: "VIRTUAL_CASH_DECREASE.CANCELLED",
})

// WatchVirtualCashEvents streams virtual cash increase and decrease events.
func (s *VirtualCashService) WatchVirtualCashEvents(req *gatewayv1.WatchVirtualCashEventsRequest, stream grpc.ServerStreamingServer[gatewayv1.WatchVirtualCashEventsResponse]) error {
	return watchEvents(stream, &s.backend, virtualCashEventTypes, req.GetAccountGroupId(), req.GetEventTypes(), req.GetResumeToken(),
		func(token string, ev *events.Event) *gatewayv1.WatchVirtualCashEventsResponse {
			resp := &gatewayv1.WatchVirtualCashEventsResponse{ResumeToken: token}
			if ev == nil {
				resp.Kind = &gatewayv1.WatchVirtualCashEventsResponse_Heartbeat{Heartbeat: heartbeat()}
			} else {
				resp.Kind = &gatewayv1.WatchVirtualCashEventsResponse_Event{Event: s.virtualCashEvent(ev)}
			}
			return resp
		})
}

func (s *VirtualCashService) virtualCashEvent(ev *events.Event) *gatewayv1.VirtualCashEvent {
	e := &gatewayv1.VirtualCashEvent{Id: ev.ID, CreatedAt: timestamp(ev.CreatedAt), Type: virtualCashEventTypes.of(ev.Type), WebhookId: ev.WebhookID}
	switch ev.Family() {
	case events.FamilyVirtualCashIncrease:
		if o := decodeObject(&s.backend, ev, virtualCashIncreaseToProto); o != nil {
			e.Object = &gatewayv1.VirtualCashEvent_VirtualCashIncrease{VirtualCashIncrease: o}
		}
	case events.FamilyVirtualCashDecrease:
		if o := decodeObject(&s.backend, ev, virtualCashDecreaseToProto); o != nil {
			e.Object = &gatewayv1.VirtualCashEvent_VirtualCashDecrease{VirtualCashDecrease: o}
		}
	}
	return e
}
