package upstream

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds how a call is retried: exponential backoff with full
// jitter (a uniform sleep in [0, min(MaxBackoff, InitialBackoff·Multiplier^n)]),
// floored by the server's Retry-After. Zero fields take the default.
//
// Only answers that cannot have had an effect, or whose effect a replay with
// the same idempotency-key returns instead of repeating, are retried:
// transport errors, 409, 429 and 5xx.
type RetryPolicy struct {
	MaxAttempts    int           // total attempts, the first included; 1 disables retries
	InitialBackoff time.Duration // backoff ceiling before the second attempt
	MaxBackoff     time.Duration // cap of the backoff ceiling
	Multiplier     float64       // growth of the ceiling per attempt, >= 1
}

// DefaultRetryPolicy is the policy of a client built without WithRetry.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    4,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     5 * time.Second,
	Multiplier:     2.0,
}

// maxRetryAfter is the longest server-requested delay the client waits out by
// itself; a longer one ends the retries and is returned in Error.RetryAfter,
// so the caller decides instead of a goroutine sleeping for minutes.
const maxRetryAfter = time.Minute

// normalize fills zero fields from DefaultRetryPolicy and rejects nonsense.
func (p RetryPolicy) normalize() (RetryPolicy, error) {
	switch {
	case p.MaxAttempts < 0:
		return p, errors.New("RetryPolicy.MaxAttempts is negative")
	case p.InitialBackoff < 0:
		return p, errors.New("RetryPolicy.InitialBackoff is negative")
	case p.MaxBackoff < 0:
		return p, errors.New("RetryPolicy.MaxBackoff is negative")
	case p.Multiplier < 0 || (p.Multiplier > 0 && p.Multiplier < 1) || math.IsNaN(p.Multiplier):
		return p, errors.New("RetryPolicy.Multiplier must be >= 1")
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = DefaultRetryPolicy.InitialBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = max(DefaultRetryPolicy.MaxBackoff, p.InitialBackoff)
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultRetryPolicy.Multiplier
	}
	if p.MaxBackoff < p.InitialBackoff {
		return p, errors.New("RetryPolicy.MaxBackoff is less than InitialBackoff")
	}
	return p, nil
}

// backoff is the sleep before attempt retry+1 (retry >= 1): full jitter under
// the exponential ceiling, but never less than the server's Retry-After.
func (p RetryPolicy) backoff(retry int, retryAfter time.Duration, jitter func(int64) int64) time.Duration {
	ceiling := float64(p.InitialBackoff)
	for i := 1; i < retry && ceiling < float64(p.MaxBackoff); i++ {
		ceiling *= p.Multiplier
	}
	c := time.Duration(min(ceiling, float64(p.MaxBackoff)))
	d := time.Duration(jitter(int64(c)))
	return max(d, retryAfter)
}

// retryable reports whether err is worth another attempt with the same
// idempotency-key, and the server's requested delay if any.
func retryable(err error) (bool, time.Duration) {
	if e, ok := AsError(err); ok {
		switch {
		case e.StatusCode == http.StatusConflict, e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500 && e.StatusCode <= 599:
			return true, e.RetryAfter
		}
		return false, 0
	}
	var te *TransportError
	if errors.As(err, &te) {
		return true, 0
	}
	var me *malformedError
	if errors.As(err, &me) {
		return true, 0
	}
	return false, 0
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date; anything
// else, or a date in the past, is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const ceiling = 24 * time.Hour // keeps absurd values from overflowing
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > uint64(ceiling/time.Second) {
			return ceiling
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, ceiling)
		}
	}
	return 0
}

// randInt64N is uniform in [0, n]; rand/v2's global source is safe for
// concurrent use and needs no seeding.
func randInt64N(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n + 1)
}
