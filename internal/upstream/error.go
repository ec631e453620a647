package upstream

import (
	"errors"
	"fmt"
	"time"
)

// Error is an error answer of the Investment API: its HTTP status plus the
// problem+json fields, and the upvest-request-id that support needs to trace it.
// Every non-2xx answer becomes an *Error, whether or not its body parsed.
type Error struct {
	StatusCode int           // HTTP status of the answer
	Type       string        // problem type, e.g. https://docs.upvest.co/errors/... (may be a bare word)
	Title      string        // short summary of the problem type
	Detail     string        // what went wrong with this request
	Instance   string        // URI of this occurrence, when given
	RequestID  string        // upvest-request-id header, else the body's request_id
	RetryAfter time.Duration // from a Retry-After header, 0 when absent
	// Refreshed is true when this 401 came after the client had already forced
	// one token refresh: the credentials themselves are being refused.
	Refreshed bool
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("upvest: %d", e.StatusCode)
	if e.Title != "" {
		msg += " " + e.Title
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Type != "" {
		msg += " (" + e.Type + ")"
	}
	if e.RequestID != "" {
		msg += " [upvest-request-id " + e.RequestID + "]"
	}
	return msg
}

// ErrorReason is a stable, machine-readable word for the problem: the last
// path segment of Type when it is a URL, else Type, else one derived from the
// status. It feeds google.rpc.ErrorInfo.reason.
func (e *Error) ErrorReason() string {
	t := e.Type
	for i := len(t) - 1; i >= 0; i-- {
		if t[i] == '/' {
			t = t[i+1:]
			break
		}
	}
	if t != "" {
		return t
	}
	return fmt.Sprintf("http_%d", e.StatusCode)
}

// AsError reports whether err is (or wraps) an upstream *Error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
