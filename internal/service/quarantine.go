package service

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"path"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/upvest-gateway/gateway/gen/upvest/gateway/admin/v1"
	"github.com/upvest-gateway/gateway/internal/events"
)

// QuarantineService implements adminv1.EventQuarantineServiceServer over the
// event log's quarantine: the operator's way to see the webhook events the
// gateway could not put in the log and, after a fix, to put one in.
//
// Its RPCs read raw events and write to the log, so they pass an admin guard
// first (WithAdminGuard): by default only callers on loopback, such as the
// `gateway events quarantine` command on the gateway's own host, until
// caller authorization (interceptors) covers them.
type QuarantineService struct {
	adminv1.UnimplementedEventQuarantineServiceServer
	quarantine *events.Quarantine
	log        *events.Log
	opts       options
}

// NewQuarantineService returns the service over q, re-injecting into log.
func NewQuarantineService(q *events.Quarantine, log *events.Log, opts ...Option) *QuarantineService {
	return &QuarantineService{quarantine: q, log: log, opts: newOptions(opts)}
}

// RegisterQuarantine registers the quarantine service on r and returns its
// full name (for health checking).
func RegisterQuarantine(r grpc.ServiceRegistrar, q *events.Quarantine, log *events.Log, opts ...Option) string {
	adminv1.RegisterEventQuarantineServiceServer(r, NewQuarantineService(q, log, opts...))
	return adminv1.EventQuarantineService_ServiceDesc.ServiceName
}

// defaultQuarantinePage is the page size when the caller names none.
const defaultQuarantinePage = 100

// ListQuarantinedEvents lists quarantine records, oldest first.
func (s *QuarantineService) ListQuarantinedEvents(ctx context.Context, req *adminv1.ListQuarantinedEventsRequest) (*adminv1.ListQuarantinedEventsResponse, error) {
	if err := s.guard(ctx); err != nil {
		return nil, err
	}
	v := &validator{opts: &s.opts}
	v.pageSize("page_size", req.GetPageSize())
	after, ok := decodeQuarantinePage(req.GetPageToken())
	if !ok {
		v.add("page_token", "must be the next_page_token of an earlier ListQuarantinedEvents answer")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultQuarantinePage
	}
	recs, next, err := s.quarantine.List(ctx, after, size)
	if err != nil {
		return nil, s.quarantineStatus(err, false)
	}
	resp := &adminv1.ListQuarantinedEventsResponse{NextPageToken: encodeQuarantinePage(next)}
	for i := range recs {
		resp.QuarantinedEvents = append(resp.QuarantinedEvents, quarantinedToProto(&recs[i]))
	}
	return resp, nil
}

// GetQuarantinedEvent reads one record with its raw bytes.
func (s *QuarantineService) GetQuarantinedEvent(ctx context.Context, req *adminv1.GetQuarantinedEventRequest) (*adminv1.GetQuarantinedEventResponse, error) {
	if err := s.checkRecordCall(ctx, req.GetId()); err != nil {
		return nil, err
	}
	rec, err := s.quarantine.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.quarantineStatus(err, false)
	}
	p := quarantinedToProto(&rec)
	p.Raw = rec.Raw
	return &adminv1.GetQuarantinedEventResponse{QuarantinedEvent: p}, nil
}

// checkRecordCall is the guard and the validation of a call on one record.
func (s *QuarantineService) checkRecordCall(ctx context.Context, id string) error {
	if err := s.guard(ctx); err != nil {
		return err
	}
	v := &validator{opts: &s.opts}
	v.recordID("id", id)
	return v.err()
}

// ReinjectQuarantinedEvent appends a record's event (or a corrected one) to
// the log.
func (s *QuarantineService) ReinjectQuarantinedEvent(ctx context.Context, req *adminv1.ReinjectQuarantinedEventRequest) (*adminv1.ReinjectQuarantinedEventResponse, error) {
	if err := s.checkRecordCall(ctx, req.GetId()); err != nil {
		return nil, err
	}
	e, err := s.quarantine.Reinject(ctx, s.log, req.GetId(), req.GetEvent())
	if err != nil {
		return nil, s.quarantineStatus(err, len(req.GetEvent()) > 0)
	}
	s.opts.logger.Info("events: an operator re-injected a quarantined event", "record", req.GetId(), "event_id", e.ID, "type", e.Type,
		"corrected", len(req.GetEvent()) > 0)
	return &adminv1.ReinjectQuarantinedEventResponse{EventId: e.ID, EventType: e.Type}, nil
}

// recordID checks a quarantine record id: 32 lower-case hex digits.
func (v *validator) recordID(field, id string) {
	ok := len(id) == 32
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
	}
	if !ok {
		v.add(field, "must be the id of a quarantined event (32 lower-case hexadecimal digits)")
	}
}

// quarantineStatus translates the quarantine's errors. A *DeliveryError is
// the event that still cannot be stored: a violation of the corrected event
// the caller sent, or, for the raw bytes as received, a precondition (the
// gateway has not learnt to read them yet).
func (s *QuarantineService) quarantineStatus(err error, corrected bool) error {
	var (
		code    codes.Code
		reason  string
		msg     string
		details []protoadapt.MessageV1
		de      *events.DeliveryError
	)
	switch {
	case errors.Is(err, events.ErrNotQuarantined):
		code, reason, msg = codes.NotFound, "NOT_QUARANTINED", "no quarantined event has this id (retention may have removed it)"
	case errors.As(err, &de) && corrected:
		field := "event"
		if de.Field != "" {
			field += "." + de.Field
		}
		code, reason, msg = codes.InvalidArgument, "INVALID_EVENT", "invalid request: check "+field+": "+de.Reason
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: de.Reason}}})
	case errors.As(err, &de):
		code, reason = codes.FailedPrecondition, "EVENT_STILL_INVALID"
		msg = "the event as received still cannot be stored (" + eventProblem(de) + "); send a corrected event"
	case errors.Is(err, events.ErrUnavailable), errors.Is(err, events.ErrClosed):
		code, reason, msg = codes.Unavailable, "EVENT_LOG_UNAVAILABLE", "the event log or its quarantine is unavailable; retry later"
	default:
		s.opts.logger.Error("events: quarantine", "err", err)
		code, reason, msg = codes.Internal, "INTERNAL", "the quarantine could not be read"
	}
	details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: GatewayErrorDomain})
	st := status.New(code, msg)
	if d, derr := st.WithDetails(details...); derr == nil {
		st = d
	}
	return st.Err()
}

func eventProblem(de *events.DeliveryError) string {
	if de.Field == "" {
		return de.Reason
	}
	return de.Field + ": " + de.Reason
}

func quarantinedToProto(r *events.QuarantinedEvent) *adminv1.QuarantinedEvent {
	p := &adminv1.QuarantinedEvent{
		Id:                r.ID,
		Reason:            r.Reason,
		PayloadIndex:      int32(r.Index),
		EventId:           r.EventID,
		EventType:         r.Type,
		WebhookId:         r.WebhookID,
		KeyId:             r.KeyID,
		ReceivedAt:        timestamp(r.ReceivedAt),
		Size:              int64(r.Size),
		Sha256:            r.SHA256,
		ReinjectedEventId: r.ReinjectedEventID,
	}
	if !r.ReinjectedAt.IsZero() {
		p.ReinjectedAt = timestamppb.New(r.ReinjectedAt)
	}
	return p
}

// Page tokens wrap the quarantine's opaque position, so that callers treat
// them as opaque too.
func encodeQuarantinePage(pos string) string {
	if pos == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(pos))
}

func decodeQuarantinePage(token string) (string, bool) {
	if token == "" {
		return "", true
	}
	if len(token) > maxResumeTokenLen {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) == 0 {
		return "", false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return string(b), true
}

// guard runs the admin guard (WithAdminGuard).
func (s *QuarantineService) guard(ctx context.Context) error {
	if s.opts.adminGuard == nil {
		return nil
	}
	return s.opts.adminGuard(ctx)
}

// LoopbackOnly is the default admin guard: it lets through callers on a
// loopback address only, so that until caller authorization exists the
// admin RPCs are reachable from the gateway's own host (the `gateway events`
// command, kubectl exec) and nowhere else, whatever GATEWAY_GRPC_ADDR binds.
func LoopbackOnly(ctx context.Context) error {
	if p, ok := peer.FromContext(ctx); ok {
		if addr, ok := p.Addr.(*net.TCPAddr); ok && addr.IP.IsLoopback() {
			return nil
		}
	}
	method, _ := grpc.Method(ctx)
	st := status.New(codes.PermissionDenied, path.Base(method)+" is answered only to callers on the gateway's own host (loopback)")
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: "ADMIN_LOOPBACK_ONLY", Domain: GatewayErrorDomain}); err == nil {
		st = d
	}
	return st.Err()
}
