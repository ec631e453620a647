package upvestsim

import (
	"fmt"
	"net/http"

	apiproblem "github.com/upvest-gateway/gateway/internal/problem"
)

// problemTypeBase prefixes every problem type, as upstream does; clients key
// on the last path segment.
const problemTypeBase = "https://docs.upvest.co/errors/"

// problem is an error answer of the API. Handlers return it and the pipeline
// renders it as application/problem+json, so every refusal looks the same on
// the wire whatever stage produced it.
type problem struct {
	status int
	word   string // last segment of the type URL
	detail string
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.status, p.word, p.detail) }

func newProblem(status int, word, format string, args ...any) *problem {
	return &problem{status: status, word: word, detail: fmt.Sprintf(format, args...)}
}

// The problem words follow the upstream examples ("bad_request",
// "unauthorized", ...), except where the upstream names a specific one.
func badRequest(format string, args ...any) *problem {
	return newProblem(http.StatusBadRequest, "bad_request", format, args...)
}

func unauthorized(format string, args ...any) *problem {
	return newProblem(http.StatusUnauthorized, "unauthorized", format, args...)
}

func forbidden(format string, args ...any) *problem {
	return newProblem(http.StatusForbidden, "forbidden", format, args...)
}

func notFound(format string, args ...any) *problem {
	return newProblem(http.StatusNotFound, "not_found", format, args...)
}

func unprocessable(format string, args ...any) *problem {
	return newProblem(http.StatusUnprocessableEntity, "unprocessable_entity", format, args...)
}

// problemWords maps statuses to the upstream's type word for answers that
// have no more specific one (faults, method not allowed).
var problemWords = map[int]string{
	http.StatusBadRequest:          "bad_request",
	http.StatusUnauthorized:        "unauthorized",
	http.StatusForbidden:           "forbidden",
	http.StatusNotFound:            "not_found",
	http.StatusMethodNotAllowed:    "method_not_allowed",
	http.StatusNotAcceptable:       "not_acceptable",
	http.StatusConflict:            "conflict",
	http.StatusUnprocessableEntity: "unprocessable_entity",
	http.StatusTooManyRequests:     "too_many_requests",
	http.StatusInternalServerError: "internal_server_error",
	http.StatusServiceUnavailable:  "service_unavailable",
	http.StatusGatewayTimeout:      "gateway_timeout",
}

func statusProblem(status int, format string, args ...any) *problem {
	word, ok := problemWords[status]
	if !ok {
		word = "error"
	}
	return newProblem(status, word, format, args...)
}

func (p *problem) reply(requestID string) *reply {
	body := (&apiproblem.Details{
		Type:      problemTypeBase + p.word,
		Status:    p.status,
		Title:     http.StatusText(p.status),
		Detail:    p.detail,
		RequestID: requestID,
	}).Marshal()
	return &reply{status: p.status, contentType: apiproblem.ContentType, body: body}
}
