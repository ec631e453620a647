package events

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problemTypeBase prefixes the problem types the receiver answers with; a
// URN, as the gateway publishes no documentation pages for them.
const problemTypeBase = "urn:upvest-gateway:problem:"

// problem is an RFC 9457 answer. Details never echo the body or headers.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, word, detail string) {
	p := problem{Type: problemTypeBase + word, Title: http.StatusText(status), Status: status, Detail: detail}
	b, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
