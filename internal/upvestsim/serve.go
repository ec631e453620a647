package upvestsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/upvest-gateway/gateway/internal/pause"
)

// maxBodyBytes caps request bodies; upstream bodies are a few hundred bytes.
const maxBodyBytes = 1 << 20

// call is one API request on its way through the checks.
type call struct {
	r         *http.Request
	requestID string
	body      []byte
	route     *route
	params    map[string]string
	page      listParams // list routes only
	keyID     string     // verified signing key
	idemKey   string
	fault     Fault
	hasFault  bool
}

// reply is an answer not yet written, so the pipeline can store it for
// idempotent replays, record it, or drop it instead of sending it.
type reply struct {
	status      int
	contentType string
	body        []byte
	allow       string // Allow header of a 405
	acted       bool   // a creating operation took effect
}

func jsonReply(status int, v any) *reply {
	body, err := json.Marshal(v)
	if err != nil {
		panic("upvestsim: marshal answer: " + err.Error())
	}
	return &reply{status: status, contentType: "application/json", body: body}
}

func emptyReply(status int) *reply { return &reply{status: status} }

// cut is a copy of rep with only the first half of its body: an answer
// that arrives whole but cannot be decoded. rep itself may be the stored
// answer of an idempotency key, which later replays must get intact.
func (rep *reply) cut() *reply {
	c := *rep
	c.body = rep.body[:len(rep.body)/2]
	return &c
}

// ServeHTTP answers one request like the Investment API would; paths under
// /_sim/ are the simulator's own inspection and control endpoints.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		s.serveControl(w, r)
		return
	}
	start := time.Now()
	c := &call{r: r, requestID: s.ids.uuid()}
	w.Header().Set("upvest-request-id", c.requestID)

	rep, reason := s.serveAPI(c)
	dropped := rep != nil && c.hasFault && c.fault.Kind == FaultDropAfterApply
	if dropped {
		reason += "; connection dropped (injected fault)"
	}
	if rep != nil && c.hasFault && c.fault.Kind == FaultUnreadableAnswer && len(rep.body) > 0 {
		rep = rep.cut()
		reason += "; answer cut short (injected fault)"
	}
	s.record(c, rep, reason, start)
	switch {
	case rep == nil: // the client went away: nobody to answer
	case dropped:
		dropConnection(w)
	default:
		writeReply(w, rep)
	}
}

// serveAPI runs the checks in the upstream's order and the operation. It
// returns the answer (nil when there is nobody left to answer) and a short
// reason for the log.
func (s *Sim) serveAPI(c *call) (*reply, string) {
	r := c.r
	if !pause.For(r.Context(), s.cfg.Latency) {
		return nil, "client gone"
	}
	body, err := readBody(r)
	if err != nil {
		return s.fail(c, badRequest("%v", err))
	}
	c.body = body

	rt, params, allowed := match(r.Method, r.URL.Path)
	if rt == nil {
		if len(allowed) > 0 {
			rep, reason := s.fail(c, statusProblem(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
			rep.allow = strings.Join(allowed, ", ")
			return rep, reason
		}
		return s.fail(c, notFound("no operation at %s", r.URL.Path))
	}
	c.route, c.params = rt, params
	if rt.public {
		s.mu.Lock()
		s.tokenRequests++
		s.mu.Unlock()
	}

	if c.fault, c.hasFault = s.faults.take(r.Method, r.URL.Path); c.hasFault {
		switch c.fault.Kind {
		case Fault429, Fault500, Fault503:
			return s.fail(c, statusProblem(c.fault.status(), "injected fault"))
		case Fault504:
			if !pause.For(r.Context(), c.fault.Delay) {
				return nil, "client gone"
			}
			return s.fail(c, statusProblem(http.StatusGatewayTimeout, "injected fault: upstream timed out"))
		}
	}

	if p := s.authenticate(c); p != nil {
		return s.fail(c, p)
	}
	if p := checkNegotiation(r); p != nil {
		return s.fail(c, p)
	}
	if p := c.parseParams(); p != nil {
		return s.fail(c, p)
	}
	if rt.idem != idemNone {
		return s.serveIdempotent(c)
	}
	return s.act(c)
}

// act runs the operation, after any injected latency: the delay sits after
// the checks (and after the idempotency key is reserved), so a held request
// is "in flight" for a concurrent duplicate.
func (s *Sim) act(c *call) (*reply, string) {
	if c.hasFault && c.fault.Kind == FaultLatency && !pause.For(c.r.Context(), c.fault.Delay) {
		return nil, "client gone"
	}
	rep, err := c.route.handle(s, c)
	if err != nil {
		var p *problem
		if !errors.As(err, &p) {
			p = statusProblem(http.StatusInternalServerError, "%v", err)
		}
		return s.fail(c, p)
	}
	return rep, "ok"
}

func (s *Sim) fail(c *call, p *problem) (*reply, string) {
	return p.reply(c.requestID), p.word + ": " + p.detail
}

// parseParams checks path parameters (all UUIDs upstream) and the query:
// list routes take the paging parameters, every other route none.
func (c *call) parseParams() *problem {
	for name, v := range c.params {
		if !uuidPattern.MatchString(v) {
			return badRequest("path parameter %s: %q is not a UUID", name, v)
		}
		c.params[name] = strings.ToLower(v)
	}
	if c.route.sorts == nil {
		if c.r.URL.RawQuery != "" {
			return badRequest("%s %s takes no query parameters", c.route.method, c.route.pattern)
		}
		return nil
	}
	var p *problem
	c.page, p = parseListParams(c.r.URL.RawQuery, c.route.sorts)
	return p
}

// readBody reads a request body up to maxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("request body exceeds %d bytes", maxBodyBytes)
	}
	return body, nil
}

func writeReply(w http.ResponseWriter, rep *reply) {
	h := w.Header()
	if rep.allow != "" {
		h.Set("Allow", rep.allow)
	}
	if len(rep.body) > 0 {
		h.Set("Content-Type", rep.contentType)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// dropConnection closes the connection without a byte of answer: the
// "applied, then the network failed" case clients must survive by retrying
// with the same idempotency key.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	// Not hijackable (HTTP/2, or a wrapper that hides it): abort the
	// response, which net/http does by resetting the stream or connection.
	panic(http.ErrAbortHandler)
}
