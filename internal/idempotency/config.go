package idempotency

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Defaults of Config.
const (
	DefaultBucket = "UPVEST_GATEWAY_IDEMPOTENCY"
	// DefaultRetention covers a client retrying for a day.
	DefaultRetention = 24 * time.Hour
	// DefaultLease is longer than a pause of a loaded process or a NATS
	// leader election, so a live owner is not taken over, and short enough
	// that a caller of a dead owner's request still has time to run it.
	DefaultLease = 10 * time.Second
	// DefaultRequestTimeout bounds one round trip to NATS, so that a NATS
	// outage is answered UNAVAILABLE while the caller still has time.
	DefaultRequestTimeout = 2 * time.Second
)

// Config configures a Store. The zero value is the defaults.
type Config struct {
	// Bucket is the JetStream key-value bucket; replicas sharing a store
	// use the same. Default DefaultBucket.
	Bucket string
	// Retention is how long an entry is kept after its last write (the
	// bucket's TTL). Default DefaultRetention.
	Retention time.Duration
	// Replicas of the bucket: 1 by default; 3 on a clustered NATS. Open
	// fails when NATS cannot keep that many.
	Replicas int
	// Lease is how long an in-flight entry may go without being renewed
	// before a waiter takes it over. Default DefaultLease.
	Lease time.Duration
	// RenewEvery is how often an owner renews its lease; less than half of
	// Lease, so one late renewal does not lose it. Default Lease/3.
	RenewEvery time.Duration
	// RequestTimeout bounds each round trip to NATS. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
}

var bucketPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func (c Config) withDefaults() (Config, error) {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = c.Lease / 3
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	switch {
	case !bucketPattern.MatchString(c.Bucket):
		return c, fmt.Errorf("idempotency: Bucket %q is not a valid bucket name (letters, digits, - and _)", c.Bucket)
	case c.Replicas < 1 || c.Replicas > 5:
		return c, errors.New("idempotency: Replicas must be between 1 and 5")
	case c.Lease < 0 || c.RenewEvery < 0 || c.RequestTimeout < 0 || c.Retention < 0:
		return c, errors.New("idempotency: durations must be positive")
	case c.Lease < 10*time.Millisecond || c.Lease > maxLease:
		return c, fmt.Errorf("idempotency: Lease must be between 10ms and %s", maxLease)
	case 2*c.RenewEvery >= c.Lease:
		return c, errors.New("idempotency: RenewEvery must be less than half of Lease")
	case c.Retention <= c.Lease:
		return c, errors.New("idempotency: Retention must be longer than Lease")
	}
	return c, nil
}
