package events

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderAllowance is what an event's message may spend on its headers
// (Nats-Msg-Id, Nats-Expected-Stream, and any the log adds): the rest of the
// connection's max payload is left for the event itself. Headers count
// towards NATS's max_payload.
const HeaderAllowance = 1024

// jsMessageTooLarge is JetStream's error code for a message above the
// stream's maximum message size (JSStreamMessageExceedsMaximumErr).
const jsMessageTooLarge = 10054

// MaxEventSize is the largest event, as the log stores it (Event.MarshalJSON),
// that one NATS message on this connection can carry. An event above it can
// never be stored; a caller checks before appending, so that it can treat
// the event as the permanent failure it is rather than as an unavailable log.
func (l *Log) MaxEventSize() int {
	return MaxEventSize(l.nc)
}

// MaxEventSize is the largest event one message on nc can carry.
func MaxEventSize(nc *nats.Conn) int {
	return max(int(nc.MaxPayload())-HeaderAllowance, 0)
}

// CheckSize returns a *DeliveryError (index 0, for the caller to set) when
// e's stored form is larger than limit bytes, or cannot be encoded at all.
func CheckSize(e *Event, limit int) error {
	data, err := e.MarshalJSON()
	if err != nil {
		return &DeliveryError{Reason: "cannot be encoded as JSON"}
	}
	if len(data) > limit {
		return &DeliveryError{Reason: fmt.Sprintf("too large for the event log: %d bytes stored, at most %d", len(data), limit)}
	}
	return nil
}

// IsTooLarge reports whether err says a message was too large for NATS
// (the connection's max payload) or for the stream: a permanent failure of
// that message, whatever else is wrapped around it.
func IsTooLarge(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsMessageTooLarge
}
