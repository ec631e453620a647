package service

import (
	"google.golang.org/grpc"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// Register registers all four services, calling Upvest through c, on r and
// returns their full names (for health checking).
func Register(r grpc.ServiceRegistrar, c *upstream.Client, opts ...Option) []string {
	gatewayv1.RegisterVirtualCashServiceServer(r, NewVirtualCashService(c, opts...))
	gatewayv1.RegisterTopupServiceServer(r, NewTopupService(c, opts...))
	gatewayv1.RegisterPaymentsServiceServer(r, NewPaymentsService(c, opts...))
	gatewayv1.RegisterCashBalanceServiceServer(r, NewCashBalanceService(c, opts...))
	return ServiceNames()
}

// ServiceNames are the full names of the four services.
func ServiceNames() []string {
	return []string{
		gatewayv1.VirtualCashService_ServiceDesc.ServiceName,
		gatewayv1.TopupService_ServiceDesc.ServiceName,
		gatewayv1.PaymentsService_ServiceDesc.ServiceName,
		gatewayv1.CashBalanceService_ServiceDesc.ServiceName,
	}
}
