package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/broker"
)

// The quarantine is the event log's dead-letter stream: the events of a
// correctly signed delivery that the log cannot take (a malformed event, one
// too large for a NATS message, a body that is not a delivery at all), with
// their raw bytes and the reason, so that the delivery can still be answered
// 200 and Upvest goes on with the next one. An operator lists them and, after
// a fix, re-injects one into the log.
//
// It lives on the same broker as the log, in a stream named after it
// (<stream>_QUARANTINE, subjects <subject>_quarantine.>), with the same
// retention (age, size, duplicate window, replicas): what the log would
// have dropped by now, the quarantine drops too.
//
// Raw bytes can be larger than one NATS message (that is one reason to be
// here), so each record is stored as chunks, each at most the connection's
// max payload less HeaderAllowance, published before the record that lists
// their sequences:
//
//	<q>.raw.<id>         the raw bytes, in order, one chunk per message
//	<q>.record.<id>      the record (JSON: reason, index, ids, size, SHA-256, chunk sequences)
//	<q>.reinjected.<id>  one per re-injection (JSON: when, which event)
//
// The id is the hex of the first 16 bytes of the SHA-256 of the raw bytes,
// and every message carries a Nats-Msg-Id derived from it, so Upvest's
// retry of a delivery quarantines its bad events once. Retention removes the
// oldest messages first, so a record may outlive some of its chunks: reading
// it then says the raw bytes are no longer held.

// ErrNotQuarantined is returned for an id the quarantine does not hold.
var ErrNotQuarantined = errors.New("events: no quarantined event has this id")

// maxQuarantinedSize bounds the size a stored record may claim, so that a
// damaged record cannot make a reader allocate without limit. It is far
// above any delivery body the receiver accepts.
const maxQuarantinedSize = 1 << 30

// QuarantinedEvent is one quarantine record.
type QuarantinedEvent struct {
	ID     string // hex of the first 16 bytes of SHA-256(Raw)
	Reason string // e.g. "payload[1].created_at: not an RFC 3339 date-time"
	// Index is the event's position in the delivery's payload; -1 when the
	// whole body is quarantined because it is not a readable delivery.
	Index int
	// What could be read of the event, for the operator: "" when not.
	// Sender-controlled, so bounded and made valid UTF-8.
	EventID, Type, WebhookID string
	KeyID                    string // key id of the delivery's signature
	ReceivedAt               time.Time
	Size                     int    // len(Raw)
	SHA256                   string // hex SHA-256 of Raw
	Raw                      []byte // only from Get
	// The last re-injection, if any.
	ReinjectedAt      time.Time
	ReinjectedEventID string
}

// NewQuarantinedEvent is the record of raw (an event, or a whole body with
// index -1) quarantined for reason; ID, Size and SHA256 are derived from raw.
func NewQuarantinedEvent(raw []byte, index int, reason string) QuarantinedEvent {
	sum := sha256.Sum256(raw)
	return QuarantinedEvent{
		ID:     hex.EncodeToString(sum[:16]),
		Reason: reason,
		Index:  index,
		Size:   len(raw),
		SHA256: hex.EncodeToString(sum[:]),
		Raw:    raw,
	}
}

// Quarantine is the dead-letter stream of an event log. It is safe for
// concurrent use.
type Quarantine struct {
	stream  string
	subject string
	logger  *slog.Logger
	broker  *broker.Broker
	nc      *nats.Conn
	js      jetstream.JetStream
	handle  jetstream.Stream
	now     func() time.Time
}

// QuarantineNames is the stream name and subject prefix of the quarantine of
// the log configured by cfg (defaults filled in).
func QuarantineNames(cfg LogConfig) (stream, subject string) {
	cfg, _ = cfg.withDefaults()
	return cfg.Stream + "_QUARANTINE", cfg.Subject + "_quarantine"
}

// OpenQuarantine creates the quarantine of the log configured by cfg on b,
// or brings its limits up to date. The caller owns b.
func OpenQuarantine(ctx context.Context, b *broker.Broker, cfg LogConfig, opts ...LogOption) (*Quarantine, error) {
	cfg, o, err := prepare(b, cfg, opts)
	if err != nil {
		return nil, err
	}
	q := &Quarantine{logger: o.logger, broker: b, nc: b.Conn(), js: b.JetStream(), now: time.Now}
	q.stream, q.subject = QuarantineNames(cfg)
	q.handle, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        q.stream,
		Description: "Upvest webhook events the event log " + cfg.Stream + " could not take (upvest-gateway)",
		Subjects:    []string{q.subject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Duplicates:  cfg.DuplicateWindow,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: creating stream %s: %w", ErrUnavailable, q.stream, err)
	}
	q.logger.Info("events: quarantine ready", "stream", q.stream, "subject", q.subject+".>",
		"messages", q.handle.CachedInfo().State.Msgs)
	return q, nil
}

// Stream is the name of the quarantine's stream.
func (q *Quarantine) Stream() string { return q.stream }

// Add stores records, returning nil only once every one is acknowledged
// and, on the embedded server with group commit, on disk (one sync for all
// of them, as Log.Append does). Their IDs, Sizes and SHA256s must be those
// NewQuarantinedEvent derives from Raw. A record already stored within the
// duplicate window is stored once. On error (ErrUnavailable, ErrClosed)
// some may be stored: adding them again is safe.
func (q *Quarantine) Add(ctx context.Context, recs ...QuarantinedEvent) error {
	for i := range recs {
		if err := q.add(ctx, &recs[i]); err != nil {
			return err
		}
	}
	if len(recs) > 0 {
		if err := q.broker.Sync(ctx); err != nil {
			return q.unavailable("syncing", err)
		}
	}
	return nil
}

func (q *Quarantine) add(ctx context.Context, rec *QuarantinedEvent) error {
	if q.broker.IsClosed() {
		return ErrClosed
	}
	if check := NewQuarantinedEvent(rec.Raw, rec.Index, ""); check.ID != rec.ID || check.SHA256 != rec.SHA256 || rec.Size != len(rec.Raw) {
		return errors.New("events: a quarantine record's id, size and SHA-256 must be derived from its raw bytes")
	}
	chunk := MaxEventSize(q.nc)
	if chunk <= 0 {
		return fmt.Errorf("%w: the connection's max payload leaves no room for data", ErrUnavailable)
	}
	n := max(1, (len(rec.Raw)+chunk-1)/chunk)
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := 0; i < n; i++ {
		part := rec.Raw[min(i*chunk, len(rec.Raw)):min((i+1)*chunk, len(rec.Raw))]
		msg := nats.NewMsg(q.subject + ".raw." + rec.ID)
		msg.Header.Set(jetstream.MsgIDHeader, rec.ID+".raw."+strconv.Itoa(i)+"."+strconv.Itoa(n))
		msg.Data = part
		f, err := q.js.PublishMsgAsync(msg, jetstream.WithExpectStream(q.stream))
		if err != nil {
			return q.unavailable("publishing a chunk", err)
		}
		futures = append(futures, f)
	}
	stored := quarantineRecord{
		V: 1, ID: rec.ID, Reason: rec.Reason, Index: rec.Index,
		EventID: clip(rec.EventID), Type: clip(rec.Type), WebhookID: clip(rec.WebhookID), KeyID: clip(rec.KeyID),
		ReceivedAt: rec.ReceivedAt.UTC(), Size: len(rec.Raw), SHA256: rec.SHA256,
	}
	if stored.ReceivedAt.IsZero() {
		stored.ReceivedAt = q.now().UTC()
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			stored.Chunks = append(stored.Chunks, ack.Sequence)
		case err := <-f.Err():
			return q.unavailable("storing a chunk", err)
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for acknowledgement: %w", ErrUnavailable, ctx.Err())
		}
	}
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("events: encoding a quarantine record: %w", err)
	}
	msg := nats.NewMsg(q.subject + ".record." + rec.ID)
	msg.Header.Set(jetstream.MsgIDHeader, rec.ID)
	msg.Data = data
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(q.stream)); err != nil {
		return q.unavailable("storing a record", err)
	}
	return nil
}

func (q *Quarantine) unavailable(what string, err error) error {
	if q.broker.IsClosed() {
		return ErrClosed
	}
	return fmt.Errorf("%w: quarantine: %s: %w", ErrUnavailable, what, err)
}

// List returns up to limit records (without Raw) stored after the position
// after ("" for the start), oldest first, and the position to pass for the
// next page ("" when there is none). A position is opaque.
func (q *Quarantine) List(ctx context.Context, after string, limit int) ([]QuarantinedEvent, string, error) {
	if limit <= 0 {
		limit = 100
	}
	seq := uint64(1)
	if after != "" {
		n, err := strconv.ParseUint(after, 10, 64)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("events: %q is not a quarantine position", truncate(after, 40))
		}
		seq = n
	}
	var out []QuarantinedEvent
	for {
		msg, err := q.handle.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(q.subject+".record.>"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, "", nil
		}
		if err != nil {
			return nil, "", q.unavailable("listing", err)
		}
		if len(out) == limit {
			return out, strconv.FormatUint(msg.Sequence, 10), nil
		}
		seq = msg.Sequence + 1
		rec, err := decodeQuarantineRecord(msg.Data)
		if err != nil || msg.Subject != q.subject+".record."+rec.ID {
			q.logger.Warn("events: skipping an unreadable quarantine record", "seq", msg.Sequence)
			continue
		}
		ev := rec.event()
		if err := q.reinjection(ctx, &ev); err != nil {
			return nil, "", err
		}
		out = append(out, ev)
	}
}

// Get returns the record id with its raw bytes, checked against its SHA-256.
func (q *Quarantine) Get(ctx context.Context, id string) (QuarantinedEvent, error) {
	if !isRecordID(id) {
		return QuarantinedEvent{}, ErrNotQuarantined
	}
	msg, err := q.handle.GetLastMsgForSubject(ctx, q.subject+".record."+id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return QuarantinedEvent{}, ErrNotQuarantined
	}
	if err != nil {
		return QuarantinedEvent{}, q.unavailable("reading a record", err)
	}
	rec, err := decodeQuarantineRecord(msg.Data)
	if err != nil || rec.ID != id {
		return QuarantinedEvent{}, fmt.Errorf("events: quarantine record %s is unreadable", id)
	}
	ev := rec.event()
	raw := make([]byte, 0, rec.Size)
	for _, seq := range rec.Chunks {
		m, err := q.handle.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return QuarantinedEvent{}, fmt.Errorf("events: quarantine record %s: its raw bytes are no longer held (retention)", id)
		}
		if err != nil {
			return QuarantinedEvent{}, q.unavailable("reading raw bytes", err)
		}
		if m.Subject != q.subject+".raw."+id || len(raw)+len(m.Data) > rec.Size {
			return QuarantinedEvent{}, fmt.Errorf("events: quarantine record %s: its raw bytes are no longer held (retention)", id)
		}
		raw = append(raw, m.Data...)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != rec.SHA256 {
		return QuarantinedEvent{}, fmt.Errorf("events: quarantine record %s: its raw bytes do not match their SHA-256", id)
	}
	ev.Raw = raw
	if err := q.reinjection(ctx, &ev); err != nil {
		return QuarantinedEvent{}, err
	}
	return ev, nil
}

// reinjection fills in the last re-injection of ev, if any.
func (q *Quarantine) reinjection(ctx context.Context, ev *QuarantinedEvent) error {
	msg, err := q.handle.GetLastMsgForSubject(ctx, q.subject+".reinjected."+ev.ID)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return q.unavailable("reading a re-injection", err)
	}
	var r reinjectionRecord
	if json.Unmarshal(msg.Data, &r) == nil {
		ev.ReinjectedAt, ev.ReinjectedEventID = r.At, r.EventID
	}
	return nil
}

// Reinject appends the event of record id to log: its raw bytes, or
// replacement when not empty (an operator's corrected event). It is checked
// as a delivered event is (ParseEvent, then the log's size limit), so a
// record that still cannot be stored fails with a *DeliveryError and is left
// as it is. The log de-duplicates by event id: re-injecting twice stores the
// event once. The re-injection is noted on the record.
func (q *Quarantine) Reinject(ctx context.Context, log *Log, id string, replacement []byte) (Event, error) {
	rec, err := q.Get(ctx, id)
	if err != nil {
		return Event{}, err
	}
	raw := rec.Raw
	if len(replacement) > 0 {
		raw = replacement
	}
	e, err := ParseEvent(raw)
	if err != nil {
		return Event{}, err
	}
	if err := CheckSize(&e, log.MaxEventSize()); err != nil {
		return Event{}, err
	}
	if err := log.Append(ctx, []Event{e}); err != nil {
		return Event{}, err
	}
	data, err := json.Marshal(reinjectionRecord{At: q.now().UTC(), EventID: e.ID, Replaced: len(replacement) > 0})
	if err != nil {
		return Event{}, err
	}
	msg := nats.NewMsg(q.subject + ".reinjected." + id)
	msg.Data = data
	if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(q.stream)); err != nil {
		// The event is in the log; only the note is missing.
		q.logger.Warn("events: re-injected, but the note on the quarantine record failed", "id", id, "err", err)
	}
	q.logger.Info("events: re-injected a quarantined event", "id", id, "replaced", len(replacement) > 0)
	return e, nil
}

// quarantineRecord is a record as the quarantine stores it.
type quarantineRecord struct {
	V          int       `json:"v"`
	ID         string    `json:"id"`
	Reason     string    `json:"reason"`
	Index      int       `json:"index"`
	EventID    string    `json:"event_id,omitempty"`
	Type       string    `json:"type,omitempty"`
	WebhookID  string    `json:"webhook_id,omitempty"`
	KeyID      string    `json:"key_id,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Size       int       `json:"size"`
	SHA256     string    `json:"sha256"`
	Chunks     []uint64  `json:"chunks"` // stream sequences of the raw bytes, in order
}

type reinjectionRecord struct {
	At       time.Time `json:"at"`
	EventID  string    `json:"event_id"`
	Replaced bool      `json:"replaced,omitempty"`
}

// decodeQuarantineRecord reads a stored record, refusing one whose fields
// are out of shape, so that nothing downstream trusts a damaged record.
func decodeQuarantineRecord(data []byte) (quarantineRecord, error) {
	var r quarantineRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return r, errors.New("events: quarantine record: not JSON")
	}
	if dec.More() {
		return r, errors.New("events: quarantine record: trailing data")
	}
	switch {
	case r.V != 1:
		return r, errors.New("events: quarantine record: unknown version")
	case !isRecordID(r.ID):
		return r, errors.New("events: quarantine record: bad id")
	case !isHex(r.SHA256, 64) || !strings.HasPrefix(r.SHA256, r.ID):
		return r, errors.New("events: quarantine record: bad SHA-256")
	case r.Index < -1:
		return r, errors.New("events: quarantine record: bad index")
	case r.Size < 0 || r.Size > maxQuarantinedSize:
		return r, errors.New("events: quarantine record: bad size")
	case len(r.Chunks) == 0 || len(r.Chunks) > r.Size+1:
		return r, errors.New("events: quarantine record: bad chunk list")
	}
	for _, s := range r.Chunks {
		if s == 0 {
			return r, errors.New("events: quarantine record: bad chunk sequence")
		}
	}
	return r, nil
}

func (r quarantineRecord) event() QuarantinedEvent {
	return QuarantinedEvent{
		ID: r.ID, Reason: r.Reason, Index: r.Index,
		EventID: r.EventID, Type: r.Type, WebhookID: r.WebhookID, KeyID: r.KeyID,
		ReceivedAt: r.ReceivedAt, Size: r.Size, SHA256: r.SHA256,
	}
}

func isRecordID(s string) bool { return isHex(s, 32) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// clip bounds a sender-controlled string kept for display and makes it valid
// UTF-8 (a rune cut at the bound becomes U+FFFD).
func clip(s string) string {
	return strings.ToValidUTF8(s[:min(len(s), 128)], "\uFFFD")
}
