package service

import (
	"context"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// VirtualCashService implements gatewayv1.VirtualCashServiceServer over
// Upvest's /virtual_cash_balances endpoints.
type VirtualCashService struct {
	gatewayv1.UnimplementedVirtualCashServiceServer
	core
}

// NewVirtualCashService returns the service calling Upvest through c.
func NewVirtualCashService(c *upstream.Client, opts ...Option) *VirtualCashService {
	return &VirtualCashService{core: newCore(c, opts)}
}

// CreateVirtualCashIncrease credits virtual cash to an account group.
func (s *VirtualCashService) CreateVirtualCashIncrease(ctx context.Context, req *gatewayv1.CreateVirtualCashIncreaseRequest) (*gatewayv1.CreateVirtualCashIncreaseResponse, error) {
	body := upstream.VirtualCashRequest{AccountGroupID: req.GetAccountGroupId(), Amount: req.GetAmount(), Currency: req.GetCurrency()}
	inc, err := create(ctx, &s.core, req.GetRequestId(), checkVirtualCash(body), body, s.client.CreateVirtualCashIncrease)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.CreateVirtualCashIncreaseResponse{VirtualCashIncrease: virtualCashIncreaseToProto(inc)}, nil
}

// CreateVirtualCashDecrease debits virtual cash from an account group.
func (s *VirtualCashService) CreateVirtualCashDecrease(ctx context.Context, req *gatewayv1.CreateVirtualCashDecreaseRequest) (*gatewayv1.CreateVirtualCashDecreaseResponse, error) {
	body := upstream.VirtualCashRequest{AccountGroupID: req.GetAccountGroupId(), Amount: req.GetAmount(), Currency: req.GetCurrency()}
	dec, err := create(ctx, &s.core, req.GetRequestId(), checkVirtualCash(body), body, s.client.CreateVirtualCashDecrease)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.CreateVirtualCashDecreaseResponse{VirtualCashDecrease: virtualCashDecreaseToProto(dec)}, nil
}

// CancelVirtualCashDecrease cancels a decrease while it is ISSUED or QUEUED.
func (s *VirtualCashService) CancelVirtualCashDecrease(ctx context.Context, req *gatewayv1.CancelVirtualCashDecreaseRequest) (*gatewayv1.CancelVirtualCashDecreaseResponse, error) {
	if err := cancel(ctx, &s.core, "virtual_cash_decrease_id", req.GetVirtualCashDecreaseId(), s.client.CancelVirtualCashDecrease); err != nil {
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
