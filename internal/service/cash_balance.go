package service

import (
	"context"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// CashBalanceService implements gatewayv1.CashBalanceServiceServer over
// Upvest's cash balance endpoint.
type CashBalanceService struct {
	gatewayv1.UnimplementedCashBalanceServiceServer
	core
}

// NewCashBalanceService returns the service calling Upvest through c.
func NewCashBalanceService(c *upstream.Client, opts ...Option) *CashBalanceService {
	return &CashBalanceService{core: newCore(c, opts)}
}

// GetCashBalance reads an account group's current cash balance.
func (s *CashBalanceService) GetCashBalance(ctx context.Context, req *gatewayv1.GetCashBalanceRequest) (*gatewayv1.GetCashBalanceResponse, error) {
	b, err := get(ctx, &s.core, "account_group_id", req.GetAccountGroupId(), s.client.GetCashBalance)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.GetCashBalanceResponse{CashBalance: cashBalanceToProto(b)}, nil
}
