package auth

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of the refusals made here.
const ErrorDomain = "upvest-gateway"

// ErrorInfo reasons.
const (
	ReasonUnauthenticated        = "UNAUTHENTICATED"           // no usable credentials
	ReasonUnknownCaller          = "UNKNOWN_CALLER"            // authenticated, but not in the policy
	ReasonKeysUnavailable        = "KEYS_UNAVAILABLE"          // the JWKS could not be had
	ReasonMethodNotAllowed       = "METHOD_NOT_ALLOWED"        // the policy does not grant the method
	ReasonAccountGroupNotAllowed = "ACCOUNT_GROUP_NOT_ALLOWED" // nor the account group
	ReasonAccountGroupRequired   = "ACCOUNT_GROUP_REQUIRED"    // a restricted caller named none
	ReasonCallerRateLimited      = "CALLER_RATE_LIMITED"       // calls per second
	ReasonCallerStreamLimit      = "CALLER_STREAM_LIMIT"       // open streams
)

// refusal builds a status error with an ErrorInfo and any further details.
func refusal(code codes.Code, reason, msg string, meta map[string]string, details ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	all := append([]protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: meta}}, details...)
	if d, err := st.WithDetails(all...); err == nil {
		st = d
	}
	return st.Err()
}

func unauthenticated(msg string) error {
	return refusal(codes.Unauthenticated, ReasonUnauthenticated, msg, nil)
}

// exhausted is RESOURCE_EXHAUSTED with the delay after which a retry can
// succeed.
func exhausted(reason, msg, method string, retryAfter time.Duration) error {
	// Whole milliseconds, rounded up: a client waiting the advertised time
	// must not come back a moment too early.
	retryAfter = (retryAfter + time.Millisecond - 1).Truncate(time.Millisecond)
	return refusal(codes.ResourceExhausted, reason, msg, map[string]string{"method": method},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
}
