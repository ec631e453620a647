package webhook

import (
	"net/http"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"

	"github.com/upvest-gateway/gateway/internal/problem"
)

// codeOf is the gRPC code a delivery's HTTP answer corresponds to, so that
// the receiver's problems read like every other answer of the gateway.
func codeOf(status int) rpccode.Code {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return rpccode.Code_INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return rpccode.Code_UNAUTHENTICATED
	case http.StatusForbidden:
		return rpccode.Code_PERMISSION_DENIED
	case http.StatusMethodNotAllowed:
		return rpccode.Code_UNIMPLEMENTED
	case http.StatusTooManyRequests:
		return rpccode.Code_RESOURCE_EXHAUSTED
	case http.StatusServiceUnavailable:
		return rpccode.Code_UNAVAILABLE
	}
	return rpccode.Code_INTERNAL
}

// writeProblem answers a delivery with a problem whose type ends in word.
// Details never echo the body or headers.
func writeProblem(w http.ResponseWriter, status int, word, detail string) {
	problem.Write(w, problem.New(status, codeOf(status), word, detail))
}

// writeProblemRetry is writeProblem with a Retry-After of wait.
func writeProblemRetry(w http.ResponseWriter, status int, word, detail string, wait time.Duration) {
	problem.Write(w, problem.New(status, codeOf(status), word, detail).WithRetryAfter(wait))
}
