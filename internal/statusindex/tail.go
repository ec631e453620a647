package statusindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KindVirtualCashDecrease is the kind of virtual cash decreases, also the
// lower-case event family their events are stored under.
const KindVirtualCashDecrease = "virtual_cash_decrease"

// consumerName is the durable consumer the replicas share: each event is
// recorded by one of them.
const consumerName = "upvest-gateway-statusindex"

// Tail records the events of the indexed kinds from the event log's stream
// (subjects <subjectPrefix>.<kind>.<status>.<account group>) until ctx
// ends. It starts where the shared consumer stopped, or at the oldest event
// the log holds, so the index also learns what happened while no replica
// ran.
func (ix *Index) Tail(ctx context.Context, js jetstream.JetStream, stream, subjectPrefix string) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "records statuses into the gateway's status index",
		FilterSubject: subjectPrefix + "." + KindVirtualCashDecrease + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 256,
	})
	if err != nil {
		return fmt.Errorf("%w: consumer: %w", ErrUnavailable, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { ix.record(ctx, m) })
	if err != nil {
		return fmt.Errorf("%w: consuming: %w", ErrUnavailable, err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// storedEvent is the part of a stored event the index reads.
type storedEvent struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Type      string    `json:"type"`
	Object    struct {
		ID             string `json:"id"`
		AccountGroupID string `json:"account_group_id"`
	} `json:"object"`
}

func (ix *Index) record(ctx context.Context, m jetstream.Msg) {
	var ev storedEvent
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.Object.ID == "" {
		ix.logger.Warn("statusindex: skipping an event without a readable object id", "subject", m.Subject())
		_ = m.Ack()
		return
	}
	family, status, _ := strings.Cut(ev.Type, ".")
	err := ix.Record(ctx, strings.ToLower(family), ev.Object.ID, Entry{AccountGroupID: ev.Object.AccountGroupID, Status: status, At: ev.CreatedAt})
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			ix.logger.Warn("statusindex: recording an event failed; it is redelivered", "event_id", ev.ID, "err", err)
		}
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}
