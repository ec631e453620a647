// Package statusindex keeps the gateway's own record of resources Upvest
// offers no way to read: today virtual cash decreases, which can be created
// and cancelled but not fetched. For each it knows the account group (from
// the create answer, or any event) and the newest status (from the webhook
// events in the event log), so that a cancel can be checked against the
// caller's account groups and a cancel whose answer was lost can be told
// from one that was refused.
//
// The record is a JetStream key-value bucket on the broker, shared by all
// replicas; each replica's indexer tails the event log with one durable
// consumer that the replicas share, so every event is recorded once.
package statusindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/upvest-gateway/gateway/internal/broker"
)

// ErrUnavailable wraps failures to reach the index.
var ErrUnavailable = errors.New("statusindex: unavailable")

// Defaults of Config.
const (
	DefaultBucket    = "UPVEST_GATEWAY_STATUS"
	DefaultRetention = 30 * 24 * time.Hour
)

// Config configures an Index.
type Config struct {
	Bucket    string        // default DefaultBucket
	Retention time.Duration // how long a resource is remembered after its last change; default DefaultRetention
	Replicas  int           // of the bucket; default 1
}

// Entry is what the index knows of one resource.
type Entry struct {
	AccountGroupID string    `json:"account_group_id,omitempty"`
	Status         string    `json:"status,omitempty"`
	At             time.Time `json:"at"` // when Upvest set Status
}

// Index is the record. It is safe for concurrent use.
type Index struct {
	kv     jetstream.KeyValue
	logger *slog.Logger
}

// Open creates or opens the bucket.
func Open(ctx context.Context, b *broker.Broker, cfg Config, opts ...Option) (*Index, error) {
	o := newOptions(opts)
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "Account group and newest status of resources Upvest cannot be asked about (upvest-gateway)",
		History:     1,
		TTL:         cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: bucket %s: %w", ErrUnavailable, cfg.Bucket, err)
	}
	return &Index{kv: kv, logger: o.logger}, nil
}

// key is where a resource of kind (e.g. "virtual_cash_decrease") is kept.
func key(kind, id string) string { return kind + "." + strings.ToLower(id) }

// Get returns what the index knows of a resource; ok is false when nothing.
func (ix *Index) Get(ctx context.Context, kind, id string) (e Entry, ok bool, err error) {
	v, err := ix.kv.Get(ctx, key(kind, id))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Entry{}, false, nil
	case err != nil:
		return Entry{}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := json.Unmarshal(v.Value(), &e); err != nil {
		return Entry{}, false, fmt.Errorf("statusindex: entry %s: %w", v.Key(), err)
	}
	return e, true, nil
}

// Record merges what is learnt of a resource: its account group (kept once
// known), and its status at time at, unless the index already has a status
// at least as new. Concurrent records of one resource are serialised by
// compare-and-set.
func (ix *Index) Record(ctx context.Context, kind, id string, learnt Entry) error {
	k := key(kind, id)
	for range 16 {
		cur, err := ix.kv.Get(ctx, k)
		var e Entry
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		default:
			rev = cur.Revision()
			if err := json.Unmarshal(cur.Value(), &e); err != nil {
				rev = cur.Revision() // overwrite an entry that does not read
				e = Entry{}
			}
		}
		next := e
		if next.AccountGroupID == "" {
			next.AccountGroupID = learnt.AccountGroupID
		}
		if learnt.Status != "" && (next.Status == "" || !learnt.At.Before(next.At)) {
			next.Status, next.At = learnt.Status, learnt.At
		}
		if rev != 0 && next == e {
			return nil
		}
		b, _ := json.Marshal(next)
		if rev == 0 {
			_, err = ix.kv.Create(ctx, k, b)
		} else {
			_, err = ix.kv.Update(ctx, k, b, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return fmt.Errorf("%w: %s kept changing", ErrUnavailable, k)
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Wait returns the entry of a resource once done says it is what the caller
// waits for, watching the bucket until ctx ends (then it returns the last
// entry seen and ctx's error).
func (ix *Index) Wait(ctx context.Context, kind, id string, done func(Entry) bool) (Entry, error) {
	w, err := ix.kv.Watch(ctx, key(kind, id))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer w.Stop()
	var last Entry
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case v, ok := <-w.Updates():
			if !ok {
				return last, fmt.Errorf("%w: watch ended", ErrUnavailable)
			}
			if v == nil || v.Operation() != jetstream.KeyValuePut {
				continue // the end of the initial values, or a delete
			}
			var e Entry
			if json.Unmarshal(v.Value(), &e) != nil {
				continue
			}
			last = e
			if done(e) {
				return e, nil
			}
		}
	}
}
