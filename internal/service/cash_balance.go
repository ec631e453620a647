package service

import (
	"context"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/v1"
	"github.com/upvest-gateway/gateway/internal/events"
	"github.com/upvest-gateway/gateway/internal/upstream"
)

// CashBalanceService implements gatewayv1.CashBalanceServiceServer over
// Upvest's cash balance endpoint.
type CashBalanceService struct {
	gatewayv1.UnimplementedCashBalanceServiceServer
	backend
}

// NewCashBalanceService returns the service calling Upvest through c.
func NewCashBalanceService(c *upstream.Client, opts ...Option) *CashBalanceService {
	return &CashBalanceService{backend: newBackend(c, opts)}
}

// GetCashBalance reads an account group's current cash balance.
func (s *CashBalanceService) GetCashBalance(ctx context.Context, req *gatewayv1.GetCashBalanceRequest) (*gatewayv1.GetCashBalanceResponse, error) {
	b, err := get(ctx, &s.backend, "account_group_id", req.GetAccountGroupId(), s.client.GetCashBalance)
	if err != nil {
		return nil, err
	}
	return &gatewayv1.GetCashBalanceResponse{CashBalance: cashBalanceToProto(b)}, nil
}

// WatchCashBalance streams an account group's cash balance: without a
// resume token first a snapshot read from Upvest, then every
// CASH_BALANCE.UPDATED event that is not older than the newest balance
// already sent.
//
// The rule, never back in time: an update whose created_at is before the
// newest balance sent is replaced by a heartbeat with its token (Upvest
// delivers in no order across deliveries, so an older one can arrive
// late). An update whose created_at equals it is sent: of two updates with
// the same created_at, the later one in the log wins, as it is the later one
// Upvest delivered (two updates in one delivery, 100.00 then 40.00 at the
// same time, end at 40.00). Dropping it would leave the subscriber on a
// balance that is no longer current.
//
// The subscription starts before the snapshot is read, so no update can fall
// between the two. The snapshot's read_at is when the read started, less the
// allowed clock skew (WithSnapshotSkew): an update created at or after that
// may or may not be in the snapshot, so it is sent; one created before is
// in it, so it is not. The resume tokens of this stream carry the newest
// time sent (balanceToken), so a resumed stream does not go back in time
// either, and still sends an update of that same time that comes later in
// the log.
func (s *CashBalanceService) WatchCashBalance(req *gatewayv1.WatchCashBalanceRequest, stream grpc.ServerStreamingServer[gatewayv1.WatchCashBalanceResponse]) error {
	ctx := stream.Context()
	if err := s.watchAvailable(ctx); err != nil {
		return err
	}
	ag := req.GetAccountGroupId()
	v := s.validator()
	v.id("account_group_id", ag)
	v.resumeToken("resume_token", req.GetResumeToken())
	token, newest, ok := parseBalanceToken(req.GetResumeToken())
	if !ok {
		v.add("resume_token", "must be the resume_token of a message of an earlier WatchCashBalance stream")
	}
	if err := v.err(); err != nil {
		return err
	}

	needSnapshot := token == ""
	f := events.Filter{Families: []string{events.FamilyCashBalance}, AccountGroupID: ag}
	return s.watch(ctx, f, token, func(m events.Message) error {
		resp := &gatewayv1.WatchCashBalanceResponse{}
		switch {
		case needSnapshot:
			// The subscription's first message, a heartbeat (Log.Watch
			// guarantees it), becomes the snapshot with its token.
			needSnapshot = false
			readAt := time.Now().Add(-s.opts.snapshotSkew)
			b, err := invoke(ctx, &s.backend, "", func(ctx context.Context, o ...upstream.CallOption) (*upstream.CashBalance, error) {
				return s.client.GetCashBalance(ctx, ag, o...)
			})
			if err != nil {
				return err
			}
			newest = readAt
			resp.Kind = &gatewayv1.WatchCashBalanceResponse_Snapshot{Snapshot: &gatewayv1.CashBalanceSnapshot{
				ReadAt:      timestamppb.New(readAt),
				CashBalance: cashBalanceToProto(b),
			}}
		case m.Event == nil, m.Event.CreatedAt.Before(newest):
			resp.Kind = &gatewayv1.WatchCashBalanceResponse_Heartbeat{Heartbeat: heartbeat()}
		default:
			newest = m.Event.CreatedAt
			resp.Kind = &gatewayv1.WatchCashBalanceResponse_Update{Update: &gatewayv1.CashBalanceUpdate{
				Id:          m.Event.ID,
				CreatedAt:   timestamp(m.Event.CreatedAt),
				WebhookId:   m.Event.WebhookID,
				CashBalance: decodeObject(&s.backend, m.Event, cashBalanceToProto),
			}}
		}
		resp.ResumeToken = balanceToken(m.Token, newest)
		return stream.Send(resp)
	})
}

// balanceToken is a WatchCashBalance resume token: the event log's token and
// the created_at of the newest balance sent so far, so that a resumed stream
// keeps refusing balances older than one its subscriber already has. The
// log's tokens are base64url, so "." cannot occur in them.
func balanceToken(logToken string, newest time.Time) string {
	if newest.IsZero() {
		return logToken
	}
	return logToken + "." + strconv.FormatInt(newest.UnixNano(), 36)
}

// parseBalanceToken splits a balanceToken; ok is false when its time part
// is malformed. The log token is checked by the log.
func parseBalanceToken(token string) (logToken string, newest time.Time, ok bool) {
	logToken, t, found := strings.Cut(token, ".")
	if !found {
		return logToken, time.Time{}, true
	}
	n, err := strconv.ParseInt(t, 36, 64)
	if err != nil || n <= 0 {
		return "", time.Time{}, false
	}
	return logToken, time.Unix(0, n), true
}
