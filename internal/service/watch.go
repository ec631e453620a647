package service

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
)

// The Watch* streaming RPCs, one per service. They will stream webhook events
// from the event log (internal/events): the log is to be handed to the
// services through an Option in options.go (e.g. WithEvents), and these
// method bodies replaced by subscriptions to it. The converters in mapping.go
// turn the events' objects into messages. Until then they answer UNIMPLEMENTED.

func errWatchUnimplemented(method string) error {
	return status.Error(codes.Unimplemented, method+" is not available yet: the gateway has no event log")
}

// WatchVirtualCashEvents streams virtual cash events (not yet available).
func (s *VirtualCashService) WatchVirtualCashEvents(*gatewayv1.WatchVirtualCashEventsRequest, grpc.ServerStreamingServer[gatewayv1.WatchVirtualCashEventsResponse]) error {
	return errWatchUnimplemented("WatchVirtualCashEvents")
}

// WatchTopupEvents streams top-up events (not yet available).
func (s *TopupService) WatchTopupEvents(*gatewayv1.WatchTopupEventsRequest, grpc.ServerStreamingServer[gatewayv1.WatchTopupEventsResponse]) error {
	return errWatchUnimplemented("WatchTopupEvents")
}

// WatchPaymentEvents streams direct debit and withdrawal events (not yet available).
func (s *PaymentsService) WatchPaymentEvents(*gatewayv1.WatchPaymentEventsRequest, grpc.ServerStreamingServer[gatewayv1.WatchPaymentEventsResponse]) error {
	return errWatchUnimplemented("WatchPaymentEvents")
}

// WatchCashBalance streams cash balance changes (not yet available).
func (s *CashBalanceService) WatchCashBalance(*gatewayv1.WatchCashBalanceRequest, grpc.ServerStreamingServer[gatewayv1.WatchCashBalanceResponse]) error {
	return errWatchUnimplemented("WatchCashBalance")
}
