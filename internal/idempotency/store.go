package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrUnavailable wraps failures to reach the store (NATS down, no
	// JetStream, no answer within RequestTimeout). The request was not run:
	// answer UNAVAILABLE; a retry with the same key is safe.
	ErrUnavailable = errors.New("idempotency: store unavailable")
	// ErrFingerprintMismatch means the key is already used by a different
	// request. The request was not run.
	ErrFingerprintMismatch = errors.New("idempotency: key already used for a different request")
	// ErrInProgress means the caller's context ended while another owner
	// was still running the request under that key. It wraps the context's
	// error. The request may yet take effect: the caller retries with the
	// same key and gets its outcome.
	ErrInProgress = errors.New("idempotency: request still in progress")
	// ErrInvalidKey is an empty or over-long key.
	ErrInvalidKey = errors.New("idempotency: invalid key")
)

// Source says how Do obtained a Result's outcome.
type Source int

const (
	// Ran: run was called here, the first attempt under the key.
	Ran Source = iota + 1
	// Replayed: the key was already finished; its stored outcome.
	Replayed
	// Waited: the outcome another owner recorded, after waiting for it (or
	// recorded first while this Do's own run was going on).
	Waited
	// TookOver: run was called here after an earlier attempt ended without
	// a known outcome: it released the key, or its owner stopped renewing
	// its lease (died, or was cut off from NATS).
	TookOver
)

func (s Source) String() string {
	switch s {
	case Ran:
		return "ran"
	case Replayed:
		return "replayed"
	case Waited:
		return "waited"
	case TookOver:
		return "took_over"
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// Result is what Do returns: the outcome, and how it was obtained.
type Result struct {
	Outcome []byte
	Source  Source
}

// Store is the idempotency store: one JetStream key-value bucket. It is safe
// for concurrent use, and several Stores (in several processes) on one
// bucket form one store.
type Store struct {
	cfg    Config
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	logger *slog.Logger
	owner  string // unique to this Store: see Do's orphan rule
	stats  counters

	mu        sync.Mutex
	claims    map[string]int      // keys this Store may own, by Do calls
	sightings map[string]sighting // in-flight entries of other owners seen, by key
	pruneAt   int                 // len(sightings) at which to prune it next
}

// Open creates the bucket, or brings its retention and replicas up to date,
// on js, which may be a connection to the embedded server or to an external
// cluster. The Store does not own the connection: closing it is the
// caller's job, after the last Do has returned.
//
// Open fails with an error wrapping ErrUnavailable when NATS cannot be
// reached, and with another error when NATS refuses the bucket as
// configured, e.g. more Replicas than the cluster has servers.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config, opts ...Option) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("idempotency: no JetStream connection")
	}
	o := storeOptions{logger: discardLogger()}
	for _, opt := range opts {
		opt.applyStore(&o)
	}
	s := &Store{cfg: cfg, js: js, logger: o.logger, owner: newOwner(), claims: map[string]int{},
		sightings: map[string]sighting{}, pruneAt: minPruneAt}

	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "request_id → request state and outcome (upvest-gateway)",
		History:     1,
		TTL:         cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, s.bucketError(err)
	}
	if err := s.checkReplicas(ctx); err != nil {
		return nil, err
	}
	s.kv = kv
	s.logger.Info("idempotency: store ready", "bucket", cfg.Bucket, "replicas", cfg.Replicas,
		"retention", cfg.Retention, "lease", cfg.Lease, "owner", s.owner)
	return s, nil
}

// bucketError tells a refusal by NATS (the configuration cannot be kept)
// from NATS not answering.
func (s *Store) bucketError(err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%w: creating bucket %s: %v", ErrUnavailable, s.cfg.Bucket, err)
	}
	msg := fmt.Sprintf("idempotency: NATS refused bucket %s with %d replicas: %s", s.cfg.Bucket, s.cfg.Replicas, apiErr.Description)
	if s.cfg.Replicas > 1 {
		msg += fmt.Sprintf(" (%d replicas need a JetStream cluster of at least %d servers)", s.cfg.Replicas, s.cfg.Replicas)
	}
	return errors.New(msg)
}

// checkReplicas makes sure the bucket has the replicas asked for, so that a
// store configured to survive the loss of a NATS server never silently runs
// on one.
func (s *Store) checkReplicas(ctx context.Context) error {
	// The bucket is the stream KV_<bucket>, by the key-value convention.
	stream, err := s.js.Stream(ctx, "KV_"+s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("%w: reading bucket %s: %v", ErrUnavailable, s.cfg.Bucket, err)
	}
	info := stream.CachedInfo()
	have := 1
	if info.Cluster != nil {
		have += len(info.Cluster.Replicas)
	}
	if info.Config.Replicas != s.cfg.Replicas || have < s.cfg.Replicas {
		return fmt.Errorf("idempotency: bucket %s has %d of %d replicas: the NATS cluster has too few servers",
			s.cfg.Bucket, have, s.cfg.Replicas)
	}
	return nil
}

// newOwner names a Store in the entries it owns: host (the pod's name in
// Kubernetes) and process, for an operator reading the bucket, and a random
// part, because a Store treats an in-flight entry under its own name that
// it does not hold as an orphan, so no two Stores may share a name.
func newOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Check reports whether the store can be reached, e.g. for a readiness
// probe.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.kv.Status(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Config returns the configuration in effect, defaults filled in.
func (s *Store) Config() Config { return s.cfg }
