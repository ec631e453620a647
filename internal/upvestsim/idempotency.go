package upvestsim

import (
	"crypto/sha256"
	"net/http"
	"regexp"
)

// idempotencyKeyPattern is the upstream's pattern for idempotency-key.
var idempotencyKeyPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-5][0-9a-fA-F]{3}-?[089abAB][0-9a-fA-F]{3}-?[0-9a-fA-F]{12}$`)

// idemEntry is what the Sim remembers of one idempotency key: which request
// it belongs to and, once that request succeeded, its answer.
type idemEntry struct {
	fingerprint [sha256.Size]byte
	done        bool
	reply       *reply
}

// fingerprint identifies "the same request" for a key: the operation and
// the exact body bytes a retry must repeat.
func fingerprint(c *call) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(c.r.Method + " " + c.r.URL.Path + "\n"))
	h.Write(c.body)
	var fp [sha256.Size]byte
	h.Sum(fp[:0])
	return fp
}

// serveIdempotent runs a creating request under its idempotency key, the
// way upstream (and the IETF idempotency-key draft) does: a finished key with
// the same request replays the first answer without acting again; a
// different request under the key is 422; a key still in flight is 409.
// Only successful answers are kept: a refused request may be retried with
// the same key once the cause is fixed.
func (s *Sim) serveIdempotent(c *call) (*reply, string) {
	keys := c.r.Header.Values("idempotency-key")
	switch {
	case len(keys) == 0 && c.route.idem == idemOptional:
		return s.act(c)
	case len(keys) == 0:
		return s.fail(c, newProblem(http.StatusBadRequest, "missing_idempotency_key", "the idempotency-key header is required"))
	case len(keys) > 1:
		return s.fail(c, badRequest("idempotency-key given %d times", len(keys)))
	case !idempotencyKeyPattern.MatchString(keys[0]):
		return s.fail(c, badRequest("idempotency-key %q is not a UUID", keys[0]))
	}
	c.idemKey = keys[0]
	slot := s.cfg.ClientID + "\x00" + c.idemKey
	fp := fingerprint(c)

	s.mu.Lock()
	e, seen := s.idem[slot]
	switch {
	case !seen:
		e = &idemEntry{fingerprint: fp}
		s.idem[slot] = e
	case e.fingerprint != fp:
		s.mu.Unlock()
		return s.fail(c, unprocessable("idempotency-key %s was already used for a different request", c.idemKey))
	case !e.done:
		s.mu.Unlock()
		return s.fail(c, statusProblem(http.StatusConflict, "a request with idempotency-key %s is still being processed", c.idemKey))
	default:
		rep := e.reply
		s.mu.Unlock()
		return rep, "replayed"
	}
	s.mu.Unlock()

	var rep *reply
	defer func() { // also when act panics: a key must never stay in flight
		s.mu.Lock()
		defer s.mu.Unlock()
		if rep != nil && rep.acted {
			s.effects[c.idemKey]++
		}
		if rep != nil && rep.status >= 200 && rep.status < 300 {
			e.done, e.reply = true, rep
		} else {
			delete(s.idem, slot)
		}
	}()
	var reason string
	rep, reason = s.act(c)
	return rep, reason
}

// Effects reports how many times a creating POST with this idempotency key
// took effect. A correct client and simulator keep it at most 1.
func (s *Sim) Effects(idempotencyKey string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.effects[idempotencyKey]
}
