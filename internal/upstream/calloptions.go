package upstream

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// A CallOption adjusts one call, in the style of Google Cloud Go clients.
type CallOption interface {
	applyCall(*callSettings)
}

// ResponseInfo reports how a call went, on success and on failure alike.
type ResponseInfo struct {
	RequestID      string // upvest-request-id of the last API answer; "" if none came
	IdempotencyKey string // the key sent on every attempt; "" for calls that take none
	Attempts       int    // HTTP requests sent to the API, the one re-sent after a 401 included
	StatusCode     int    // status of the last API answer; 0 if none came
}

type callSettings struct {
	retry   RetryPolicy
	idemKey string
	info    *ResponseInfo
	err     error
}

type callOptionFunc func(*callSettings)

func (f callOptionFunc) applyCall(s *callSettings) { f(s) }

// WithIdempotencyKey makes a creating POST send key (a UUID) on every
// attempt, so a retry by the caller after an unknown outcome is answered with
// the first result instead of creating twice. Without it, each call makes a
// fresh UUIDv4 once, shared by its own retries. Calls that create nothing
// ignore it.
func WithIdempotencyKey(key string) CallOption {
	return callOptionFunc(func(s *callSettings) {
		if _, err := uuid.Parse(key); err != nil || len(key) != 36 {
			s.fail(fmt.Errorf("%w: idempotency key %q is not a UUID", ErrInvalidArgument, key))
			return
		}
		s.idemKey = key
	})
}

// WithResponseInfo makes the call fill in info before it returns, whatever
// the outcome.
func WithResponseInfo(info *ResponseInfo) CallOption {
	return callOptionFunc(func(s *callSettings) { s.info = info })
}

// WithCallRetry overrides the client's retry policy for this call; zero
// fields take DefaultRetryPolicy's values, and MaxAttempts 1 disables retries.
func WithCallRetry(p RetryPolicy) CallOption {
	return callOptionFunc(func(s *callSettings) {
		np, err := p.normalize()
		if err != nil {
			s.fail(fmt.Errorf("%w: WithCallRetry: %w", ErrInvalidArgument, err))
			return
		}
		s.retry = np
	})
}

func (s *callSettings) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// ErrInvalidArgument marks a call refused before any request was sent: a
// missing id, paging out of range, a malformed call option.
var ErrInvalidArgument = errors.New("invalid argument")
